package main

import (
	"context"
	"errors"
	"io"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not wired yet")
}

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not wired yet")
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not wired yet")
}
