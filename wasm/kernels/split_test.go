package kernels

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestSplitKeepsEveryQuantByte checks the split of each split type: each
// block's f16 scale becomes a float32, its other bytes stay in order.
func TestSplitKeepsEveryQuantByte(t *testing.T) {
	for _, typ := range []string{"Q8_0", "Q4_0", "Q6_K"} {
		l := weightLayouts[typ]
		blocks := make([]byte, 3*l.blockBytes)
		for i := range blocks {
			blocks[i] = byte(i*7 + 3)
		}
		var want []byte
		for b := 0; b < 3; b++ {
			blk := blocks[b*l.blockBytes : (b+1)*l.blockBytes]
			want = append(append(want, blk[:l.scaleAt]...), blk[l.scaleAt+2:]...)
		}
		data, scales := Split(typ, blocks, func(h uint16) float32 { return float32(h) })
		assert.Equal(t, want, data, typ)
		for b, s := range scales {
			assert.Equal(t, float32(binary.LittleEndian.Uint16(blocks[b*l.blockBytes+l.scaleAt:])), s, "%s block %d", typ, b)
		}
	}
	data, scales := Split("Q4_K", []byte{1, 2, 3}, nil)
	assert.Equal(t, []byte{1, 2, 3}, data)
	assert.Nil(t, scales)
}
