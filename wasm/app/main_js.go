//go:build js && wasm

package main

import (
	"context"
	"log"
	"net/url"
	"syscall/js"

	"github.com/vugu/vugu"
	"github.com/vugu/vugu/domrender"
	"github.com/webinfer/webinfer/ui"
)

func main() {
	renderer, err := domrender.New("#vugu_mount_point")
	if err != nil {
		log.Fatalf("webinfer: page: %v", err)
	}
	defer renderer.Release()
	buildEnv, err := vugu.NewBuildEnv(renderer.EventEnv())
	if err != nil {
		log.Fatalf("webinfer: page: %v", err)
	}

	state := &ui.State{Status: "starting"}
	root := &ui.Page{State: state}
	q, _ := url.ParseQuery(trimQuery(js.Global().Get("location").Get("search").String()))
	go run(context.Background(), optionsFrom(q), state, renderer.EventEnv())

	for ok := true; ok; ok = renderer.EventWait() {
		if err := renderer.Render(buildEnv.RunBuild(root)); err != nil {
			log.Printf("webinfer: render: %v", err)
		}
	}
}

func trimQuery(s string) string {
	if len(s) > 0 && s[0] == '?' {
		return s[1:]
	}
	return s
}
