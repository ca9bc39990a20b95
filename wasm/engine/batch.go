package engine

import "context"

// RunBatch generates seqs together on b, seqs[i] in slot i: every prompt
// but its last token is prefilled into its slot, then each step feeds one
// token of every running sequence and takes their picks, which each
// Sequence accepts by its own rules; emit gets sequence i's tokens in
// order (interleaved with the others'). A sequence that ends leaves the
// batch at once and its slot is emptied. An error from emit, from b, or
// ctx ending stops every sequence and is returned with the results so
// far. The batching scheduler drives the same Sequence type, with
// requests joining and leaving between steps.
func RunBatch(ctx context.Context, b Batcher, seqs []*Sequence, emit func(i int, t Token) error) ([]Result, error) {
	results := make([]Result, len(seqs))
	next := make([]int32, len(seqs))
	var active []int
	for i, s := range seqs {
		b.ResetSeq(i)
		if err := b.SetSampling(ctx, i, s.Params(), s.Recent()); err != nil {
			return results, err
		}
		p := s.Prompt()
		if len(p) > 1 {
			if err := b.Prefill(ctx, i, p[:len(p)-1]); err != nil {
				return results, err
			}
		}
		next[i] = p[len(p)-1]
		active = append(active, i)
	}
	finish := func(i int) error {
		tail, ok, res := seqs[i].Finish()
		results[i] = res
		b.ResetSeq(i)
		if ok {
			return emit(i, tail)
		}
		return nil
	}
	tokens := make([]int32, 0, len(seqs))
	for len(active) > 0 {
		if err := ctx.Err(); err != nil {
			return results, err
		}
		tokens = tokens[:0]
		for _, i := range active {
			tokens = append(tokens, next[i])
		}
		picks, err := b.StepBatch(ctx, active, tokens)
		if err != nil {
			return results, err
		}
		still := active[:0]
		for j, i := range active {
			t, ok := seqs[i].Accept(picks[j])
			if ok {
				if err := emit(i, t); err != nil {
					return results, err
				}
			}
			if seqs[i].Done() {
				if err := finish(i); err != nil {
					return results, err
				}
				continue
			}
			next[i] = picks[j]
			still = append(still, i)
		}
		active = still
	}
	return results, nil
}
