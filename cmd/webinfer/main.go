// Command webinfer is the native side of webinfer: it serves the page and
// (as the model core lands) runs the same Go engine natively.
//
// Errors: exit status non-zero and one line on stderr starting "webinfer: ".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: webinfer <command> [flags]

commands:
  generate    stream generated text (webinfer generate -h)
  tokenize    print a text's token ids as JSON
  detokenize  print the text of token ids
  logits      print the prompt's token ids and the last position's logits
  info        print a model's metadata and tensor table as JSON
  serve       serve the page, the report store, and generation (OpenAI HTTP, WebSocket)
  bench       measure our engine and llama.cpp side by side (JSON)
  synth       write a synthetic test model
  version     print the version
`

// version is set by the Makefile (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A last line of defence: bad input must never show a Go panic trace.
	// Inputs are checked before use (and the parsers fuzzed), so reaching
	// this is a bug to report.
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "webinfer: internal error (please report it): %v\n", r)
			os.Exit(3)
		}
	}()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "webinfer: %v\n", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmds := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"generate": generate, "tokenize": tokenize, "detokenize": detokenize,
		"logits": logits, "info": info, "synth": synthCmd, "bench": benchCmd,
	}
	if c, ok := cmds[args[0]]; ok {
		return c(ctx, args[1:], stdout, stderr)
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "version":
		fmt.Fprintln(stdout, version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
