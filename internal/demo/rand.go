package demo

import (
	"math"
	"math/rand/v2"
)

// weighted is a table to draw from, each item with its weight.
type weighted[T any] []struct {
	v T
	w float64
}

func (t weighted[T]) total() float64 {
	s := 0.0
	for _, e := range t {
		s += e.w
	}
	return s
}

// pick draws one item in proportion to the weights.
func (t weighted[T]) pick(r *rand.Rand) T {
	x := r.Float64() * t.total()
	for _, e := range t {
		if x < e.w {
			return e.v
		}
		x -= e.w
	}
	return t[len(t)-1].v
}

func oneOf[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func chance(r *rand.Rand, p float64) bool { return r.Float64() < p }

// logNormal draws exp(N(mu, sigma)): the long-tailed shape of counts and amounts.
func logNormal(r *rand.Rand, mu, sigma float64) float64 {
	return math.Exp(mu + sigma*r.NormFloat64())
}

// expo draws an exponential wait with the given mean.
func expo(r *rand.Rand, mean float64) float64 { return r.ExpFloat64() * mean }

// mix is SplitMix64's finaliser: a bijection on uint64, so distinct inputs give distinct,
// random-looking outputs (used for ids that must be unique).
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// token renders x as n base62 characters (n ≥ 11 keeps every uint64 distinct).
func token(x uint64, n int) string {
	b := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		b[i] = base62[x%62]
		x /= 62
	}
	return string(b)
}
