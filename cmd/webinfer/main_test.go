package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRunErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	assert.ErrorContains(t, run(context.Background(), nil, &out, &errOut), "no command")
	assert.ErrorContains(t, run(context.Background(), []string{"frobnicate"}, &out, &errOut), `unknown command "frobnicate"`)
	assert.ErrorContains(t, run(context.Background(), []string{"serve", "--root", t.TempDir()}, &out, &errOut), "no index.html")
	t.Setenv("WEBINFER_REPORT_TOKEN", "")
	assert.ErrorContains(t, run(context.Background(), []string{"serve", "--addr", "0.0.0.0:0", "--root", t.TempDir()}, &out, &errOut), "--report-token")
	assert.NoError(t, run(context.Background(), []string{"version"}, &out, &errOut))
}
