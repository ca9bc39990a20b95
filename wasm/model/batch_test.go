package model

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/webinfer/webinfer/wasm/gguf"
)

// tinyModel loads the tiny fixture whole.
func tinyModel(t *testing.T) *Model {
	data := tinyBytes(t)
	f, err := gguf.ReadAt(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	m, err := Load(f, bytes.NewReader(data))
	require.NoError(t, err)
	return m
}

// TestForwardBatchIsEachSequencesForward runs three sequences at
// different positions through ForwardBatch, step by step, and checks
// every logit against each sequence's own Forward, bit for bit.
func TestForwardBatchIsEachSequencesForward(t *testing.T) {
	m := tinyModel(t)
	prompts := [][]int32{{1, 5, 9, 2}, {7}, {3, 3, 3, 3, 3, 3, 8}}
	alone := make([]*State, len(prompts))
	batched := make([]*State, len(prompts))
	next := make([]int32, len(prompts))
	for i, p := range prompts {
		alone[i], batched[i] = m.NewState(16), m.NewState(16)
		if len(p) > 1 {
			_, err := m.Forward(alone[i], p[:len(p)-1])
			require.NoError(t, err)
			_, err = m.Forward(batched[i], p[:len(p)-1])
			require.NoError(t, err)
		}
		next[i] = p[len(p)-1]
	}
	for step := 0; step < 5; step++ {
		got, err := m.ForwardBatch(batched, next)
		require.NoError(t, err)
		for i := range prompts {
			want, err := m.Forward(alone[i], next[i:i+1])
			require.NoError(t, err)
			require.Equal(t, want, got[i], "sequence %d, step %d", i, step)
			assert.Equal(t, alone[i].Pos, batched[i].Pos)
			next[i] = int32((int(next[i])*31 + step + i) % m.Vocab)
		}
	}
}

// TestForwardMixedIsEachSequencesForward runs a prompt in chunks of
// three beside two decoding sequences, all in one pass a step (as the
// scheduler does on the CPU), then the three decoding together: every
// logit is the one each sequence's own Forward gives (its prompt in one
// piece), bit for bit.
func TestForwardMixedIsEachSequencesForward(t *testing.T) {
	m := tinyModel(t)
	prompt := []int32{4, 8, 15, 16, 23, 42, 7, 9}
	soloA := m.NewState(32)
	wantA, err := m.Forward(soloA, prompt)
	require.NoError(t, err)
	mixedA := m.NewState(32)
	dec := []int32{3, 11}
	solo := []*State{m.NewState(32), m.NewState(32)}
	mixed := []*State{m.NewState(32), m.NewState(32)}
	for i := range dec {
		_, err := m.Forward(solo[i], []int32{1, 2})
		require.NoError(t, err)
		_, err = m.Forward(mixed[i], []int32{1, 2})
		require.NoError(t, err)
	}
	step := 0
	for fed := 0; fed < len(prompt); fed += 3 {
		chunk := prompt[fed:min(fed+3, len(prompt))]
		last := fed+3 >= len(prompt)
		parts := []Part{{St: mixedA, Tokens: chunk, Logits: last}}
		for i := range dec {
			parts = append(parts, Part{St: mixed[i], Tokens: dec[i : i+1], Logits: true})
		}
		got, err := m.ForwardMixed(parts)
		require.NoError(t, err)
		if last {
			require.Equal(t, wantA, got[0])
		} else {
			assert.Nil(t, got[0])
		}
		for i := range dec {
			want, err := m.Forward(solo[i], dec[i:i+1])
			require.NoError(t, err)
			require.Equal(t, want, got[1+i], "sequence %d, step %d", i, step)
			dec[i] = int32((int(dec[i])*31 + step) % m.Vocab)
		}
		step++
	}
	assert.Equal(t, soloA.Pos, mixedA.Pos)
	next := []int32{5, 6, 7}
	got, err := m.ForwardMixed([]Part{{St: mixedA, Tokens: next[:1], Logits: true}, {St: mixed[0], Tokens: next[1:2], Logits: true}, {St: mixed[1], Tokens: next[2:], Logits: true}})
	require.NoError(t, err)
	for i, st := range []*State{soloA, solo[0], solo[1]} {
		want, err := m.Forward(st, next[i:i+1])
		require.NoError(t, err)
		require.Equal(t, want, got[i], "sequence %d after the prompt", i)
	}

	_, err = m.ForwardMixed([]Part{{St: mixedA, Tokens: []int32{1}}, {St: mixedA, Tokens: []int32{2}}})
	assert.ErrorContains(t, err, "twice")
	_, err = m.ForwardMixed([]Part{{St: mixedA}})
	assert.ErrorContains(t, err, "no tokens")
	_, err = m.ForwardMixed([]Part{{St: m.NewState(1), Tokens: []int32{1, 2}}})
	assert.ErrorIs(t, err, ErrContextFull)
}

func TestForwardBatchErrors(t *testing.T) {
	m := tinyModel(t)
	st := m.NewState(1)
	_, err := m.ForwardBatch([]*State{st, st}, []int32{1, 2})
	assert.ErrorContains(t, err, "twice")
	_, err = m.ForwardBatch([]*State{st}, []int32{1, 2})
	assert.ErrorContains(t, err, "a batch of 1 states and 2 tokens")
	_, err = m.ForwardBatch([]*State{st}, []int32{1})
	require.NoError(t, err)
	_, err = m.ForwardBatch([]*State{st}, []int32{1})
	assert.ErrorIs(t, err, ErrContextFull)
	_, err = m.ForwardBatch([]*State{m.NewState(2)}, []int32{int32(m.Vocab)})
	assert.ErrorContains(t, err, "outside the vocabulary")
}

// TestStateGrowsAsPositionsFill checks that a cache holds only the
// positions used (doubling up to its context) and that growing it
// changes no logit.
func TestStateGrowsAsPositionsFill(t *testing.T) {
	m := tinyModel(t)
	grown, whole := m.NewState(150), m.NewState(150)
	require.NoError(t, whole.reserve(150))
	assert.Equal(t, initialPositions, grown.Held())
	assert.Equal(t, int64(initialPositions)*m.PositionBytes(), grown.Bytes())
	for i := 0; i < 150; i++ {
		tok := []int32{int32((i*7 + 1) % m.Vocab)}
		a, err := m.Forward(grown, tok)
		require.NoError(t, err)
		b, err := m.Forward(whole, tok)
		require.NoError(t, err)
		require.Equal(t, b, a, "position %d", i)
		if i == initialPositions {
			assert.Equal(t, 2*initialPositions, grown.Held())
		}
	}
	assert.Equal(t, 150, grown.Held())
	_, err := m.Forward(grown, []int32{1})
	assert.ErrorIs(t, err, ErrContextFull)
}
