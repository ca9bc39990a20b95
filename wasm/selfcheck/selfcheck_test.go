package selfcheck

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMatVecCPUPasses(t *testing.T) {
	r := MatVecCPU()
	assert.True(t, r.OK, "%+v", r)
	assert.Len(t, r.Cases, len(matVecCases))
	assert.Equal(t, "cpu", r.Backend)
}
