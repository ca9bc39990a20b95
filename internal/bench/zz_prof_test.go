package bench

import (
	"context"
	"os"
	"testing"

	"github.com/webinfer/webinfer/wasm/engine"
	"github.com/webinfer/webinfer/wasm/source"
)

func TestZZProfile(t *testing.T) {
	path := os.Getenv("PROF_MODEL")
	if path == "" {
		t.Skip()
	}
	m, _, closeFn, err := source.Load(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	for i := 0; i < 2; i++ {
		res, err := engine.Generate(context.Background(), m, engine.Request{Prompt: Prompt, MaxTokens: 64, Ctx: 512}, func(engine.Token) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("generate: prefill %.1f decode %.1f", res.PrefillTokS, res.DecodeTokS)
		a, _, _, err := runStreams(context.Background(), m, 1, 64)
		t.Logf("scheduler 1 stream: %.1f tok/s %v", a, err)
	}
}
