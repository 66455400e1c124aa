package content_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/siyu-scrm/siyu/internal/content"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// BenchmarkListContents lists a page of a 5,000-item library filtered by stage tag and by a
// text search, on each engine.
func BenchmarkListContents(b *testing.B) {
	for _, eng := range storetest.Engines {
		b.Run(string(eng), func(b *testing.B) {
			s := storetest.Open(b, eng)
			ctx := context.Background()
			svc := content.NewService(s)
			stages := []string{"新客未购", "新客已购", "老客已购", "老客复购"}
			for i := range 5000 {
				_, err := svc.Create(ctx, &content.Item{Kind: store.ContentText, Title: fmt.Sprintf("话术 %d", i),
					Body: store.ContentBody{Text: fmt.Sprintf("{{.Name}}您好，第 %d 条，关于复购券", i)},
					Tags: []store.ContentTag{{Kind: content.TagLifecycle, Value: stages[i%4]}}}, 0)
				if err != nil {
					b.Fatal(err)
				}
			}
			for _, f := range []struct {
				name string
				f    store.ContentFilter
			}{
				{"first-page", store.ContentFilter{Limit: 30}},
				{"stage", store.ContentFilter{Limit: 30, TagKind: content.TagLifecycle, TagValue: "老客复购"}},
				{"search", store.ContentFilter{Limit: 30, Query: "第 12"}},
			} {
				b.Run(f.name, func(b *testing.B) {
					for b.Loop() {
						if _, err := s.ListContents(ctx, f.f); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}
