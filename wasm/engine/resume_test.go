package engine

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/sample"
)

var errLost = errors.New("test: device lost")

// dying is a CPU decoder whose device is lost after a number of steps.
type dying struct {
	cpuDecoder
	steps int
}

func (d *dying) Queue(ctx context.Context, tokens []int32) (Pick, error) {
	if d.steps == 0 {
		return nil, errLost
	}
	d.steps--
	return d.cpuDecoder.Queue(ctx, tokens)
}

func (d *dying) QueueFromPick(ctx context.Context) (Pick, bool, error) {
	p, err := d.Queue(ctx, []int32{d.last})
	return p, err == nil, err
}

// A sequence whose backend fails mid-stream is carried on by another
// (Resume, Run) and gives, in all, the tokens of a run without the failure:
// seeded sampling with penalties, a stop string, through a decoder and
// through the CPU path's logits.
func TestResumeOnAnotherBackend(t *testing.T) {
	m := tinyModel(t)
	p := sample.Params{Temperature: 1.2, TopK: 30, RepeatPenalty: 1.2, Seed: 9}
	req := Request{Prompt: "Hello world", MaxTokens: 16, Sample: p}
	var want []int32
	var wantText string
	wantRes, err := Generate(context.Background(), m, req, func(tk Token) error {
		if tk.ID >= 0 {
			want = append(want, tk.ID)
		}
		wantText += tk.Text
		return nil
	})
	require.NoError(t, err)
	for _, next := range []struct {
		name string
		be   func() Backend
	}{
		{"decoder", func() Backend { return &cpuDecoder{cpuBackend: cpuBackend{m: m}} }},
		{"cpu", func() Backend { return CPUBackend(m) }},
	} {
		t.Run(next.name, func(t *testing.T) {
			seq, err := NewSequence(m, req)
			require.NoError(t, err)
			var got []int32
			var text string
			emit := func(tk Token) error {
				if tk.ID >= 0 {
					got = append(got, tk.ID)
				}
				text += tk.Text
				return nil
			}
			_, err = Run(context.Background(), seq, &dying{cpuDecoder: cpuDecoder{cpuBackend: cpuBackend{m: m}}, steps: 6}, emit)
			require.ErrorIs(t, err, errLost)
			require.NotEmpty(t, got)
			require.Less(t, len(got), len(want))
			seq.Resume()
			res, err := Run(context.Background(), seq, next.be(), emit)
			require.NoError(t, err)
			assert.Equal(t, want, got)
			assert.Equal(t, wantText, text)
			assert.Equal(t, wantRes.Tokens, res.Tokens)
			assert.Equal(t, wantRes.Reason, res.Reason)
		})
	}
}
