package model

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStepProfileTimesDecodePasses: a profile counts decode passes (one
// token per sequence: Forward of one token, ForwardBatch, an all-decode
// ForwardMixed) and leaves prefill out; its phases fit inside the
// passes' time, the products read the layers' weight bytes, and timing
// changes no logit.
func TestStepProfileTimesDecodePasses(t *testing.T) {
	m := tinyModel(t)
	plain := tinyModel(t)
	m.Profile = &StepProfile{}
	assert.Nil(t, m.Profile.Times(), "nothing recorded yet")

	st, ref := m.NewState(16), plain.NewState(16)
	_, err := m.Forward(st, []int32{1, 5, 9}) // a prefill: not timed
	require.NoError(t, err)
	_, err = plain.Forward(ref, []int32{1, 5, 9})
	require.NoError(t, err)
	assert.Nil(t, m.Profile.Times(), "a prefill is not a decode step")

	got, err := m.Forward(st, []int32{2})
	require.NoError(t, err)
	want, err := plain.Forward(ref, []int32{2})
	require.NoError(t, err)
	assert.Equal(t, want, got, "timing changes no logit")

	other := m.NewState(16)
	_, err = m.ForwardBatch([]*State{st, other}, []int32{3, 4})
	require.NoError(t, err)
	_, err = m.ForwardMixed([]Part{{St: st, Tokens: []int32{6}, Logits: true}, {St: other, Tokens: []int32{7, 8}, Logits: true}})
	require.NoError(t, err) // a prompt chunk in the pass: not timed

	tm := m.Profile.Times()
	require.NotNil(t, tm)
	assert.Equal(t, int64(2), tm.Passes)
	assert.Equal(t, int64(3), tm.Tokens)
	var sum float64
	for _, name := range PhaseNames {
		v, ok := tm.MsPerToken[name]
		require.True(t, ok, name)
		assert.GreaterOrEqual(t, v, 0.0, name)
		sum += v
	}
	assert.LessOrEqual(t, sum, tm.MsPerToken["pass"]*1.0001, "the phases lie inside the pass")
	require.Len(t, tm.ByBatch, 2, "a one-token pass and a two-token one")
	assert.Equal(t, 1.0, tm.ByBatch["1"]["passes"])
	assert.Equal(t, 1.0, tm.ByBatch["2"]["passes"])
	for _, b := range tm.ByBatch {
		assert.Positive(t, b["products"])
		assert.LessOrEqual(t, b["products"], b["pass"])
	}
	assert.Positive(t, tm.MsPerToken["products"])
	assert.Positive(t, tm.ProductGBs)

	var layerBytes int64
	for _, ly := range m.Layers {
		for _, w := range []int64{ly.Wq.Size(), ly.Wk.Size(), ly.Wv.Size(), ly.Wo.Size(), ly.Wgate.Size(), ly.Wup.Size(), ly.Wdown.Size()} {
			layerBytes += w
		}
	}
	assert.Equal(t, 2*layerBytes, m.Profile.bytes.Load(), "each pass reads every layer weight once")
}
