// Package engine runs generation: prompt → tokens → prefill → a loop of
// sampling and decode steps, streaming each token's text as it is produced,
// stopping at the end-of-generation token, a stop string or the token limit.
// The same code serves the CLI, the server and the page.
//
// A Sequence owns one request's token stream (the per-token rules, the
// recent tokens, the timings); backends offer primitives (Backend: a
// forward pass; Decoder: picks on the device, queued a step ahead;
// Batcher: a step of several sequences) and never call back into the
// engine. Generate drives one Sequence; RunBatch drives several on a
// Batcher.
//
// In: a loaded model and a Request. Out: a callback per token, and a Result
// with the stop reason, token counts and timings.
package engine

import (
	"context"
	"errors"

	"github.com/webinfer/webinfer/wasm/model"
	"github.com/webinfer/webinfer/wasm/sample"
)

// Generate runs req on m, calling emit for every generated token in order.
// An error from emit, or ctx ending, stops generation and is returned. A
// Decoder backend picks on the device, a step queued ahead; any other (and
// a Decoder refusing the sampling settings) returns logits that the
// Sequence samples. req.Backend nil is the CPU path.
func Generate(ctx context.Context, m *model.Model, req Request, emit func(Token) error) (Result, error) {
	seq, err := NewSequence(m, req)
	if err != nil {
		return Result{}, err
	}
	be := req.Backend
	if be == nil {
		be = CPUBackend(m)
	}
	return Run(ctx, seq, be, emit)
}

// Run drives seq on be from Feed until it ends, calling emit for every
// token (and, at the end, for the text held back). When be fails, the
// error is returned with seq as it was after its last token, not
// finished: Resume and Run on another backend carry it on (the session
// does so after a lost GPU device).
func Run(ctx context.Context, seq *Sequence, be Backend, emit func(Token) error) (Result, error) {
	if err := be.Reset(seq.Ctx()); err != nil {
		return seq.res, err
	}
	var err error
	// accept takes one generated token: it reports whether to go on, and
	// sets err when generation must end with an error.
	accept := func(id int32) bool {
		if err = ctx.Err(); err != nil {
			return false
		}
		t, ok := seq.Accept(id)
		if ok {
			if err = emit(t); err != nil {
				return false
			}
		}
		return !seq.Done()
	}
	var runErr error
	d, isDecoder := be.(Decoder)
	if isDecoder {
		runErr = d.SetSampling(ctx, 0, seq.Params(), seq.Recent())
		if errors.Is(runErr, sample.ErrBackend) {
			isDecoder, runErr = false, nil // refused before anything ran
		}
	}
	switch {
	case runErr != nil:
	case seq.Remaining() <= 0:
	case isDecoder:
		runErr = Pipeline(ctx, d, seq.Feed(), seq.Remaining(), accept)
	default:
		runErr = stepwise(ctx, be, seq, accept)
	}
	if runErr == nil {
		runErr = err
	}
	if runErr != nil {
		return seq.res, runErr
	}
	tail, ok, res := seq.Finish()
	if ok {
		if err := emit(tail); err != nil {
			return res, err
		}
	}
	return res, nil
}

// stepwise feeds the prompt, samples the next token from the logits, and
// feeds it, one step at a time, while accept says to go on.
func stepwise(ctx context.Context, be Backend, seq *Sequence, accept func(int32) bool) error {
	tokens := seq.Feed()
	for {
		logits, err := be.Forward(ctx, tokens)
		if err != nil {
			return err
		}
		id := seq.Sample(logits)
		if !accept(id) {
			return nil
		}
		tokens = []int32{id}
	}
}

// Pipeline feeds prompt to d and then takes up to n picks, handing each to
// accept in order, while accept says to go on. Step t+1 is queued before
// step t's pick is read (its input is that pick, on the device), so when
// accept says stop (the end-of-generation token, a stop string: seen one
// step late), the step queued ahead is waited for and undone.
func Pipeline(ctx context.Context, d Decoder, prompt []int32, n int, accept func(int32) bool) error {
	if n <= 0 {
		return nil
	}
	pending, err := d.Queue(ctx, prompt)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		var ahead Pick
		if i+1 < n {
			a, ok, err := d.QueueFromPick(ctx)
			if err != nil {
				return err
			}
			if ok {
				ahead = a
			}
		}
		tok, err := pending(ctx)
		if err != nil {
			return err
		}
		if !accept(tok) || i+1 == n {
			if ahead != nil {
				_, err = ahead(ctx)
				d.Unqueue()
			}
			return err
		}
		if ahead == nil { // the backend could not take its input from the pick
			if ahead, err = d.Queue(ctx, []int32{tok}); err != nil {
				return err
			}
		}
		pending = ahead
	}
	return nil
}
