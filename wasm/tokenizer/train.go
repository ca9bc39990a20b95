package tokenizer

import (
	"fmt"
	"sort"
	"strings"
)

// TrainBPE learns a byte-level BPE vocabulary of vocabSize tokens from
// texts, splitting words with GPT-2's pre-tokenizer (tokenizer.ggml.pre
// "gpt-2", which llama.cpp understands). The vocabulary is the 256 byte
// tokens, then one token per merge in the order learned, then specials
// (control tokens). Ties between equally frequent pairs go to the
// lexicographically smallest, so training is deterministic.
//
// It returns the tokens (GPT-2 byte characters, as GGUF stores them) and
// the merges ("left right").
func TrainBPE(texts []string, vocabSize int, specials []string) (tokens, merges []string, err error) {
	nMerges := vocabSize - 256 - len(specials)
	if nMerges < 0 {
		return nil, nil, fmt.Errorf("tokenizer: vocabulary of %d is smaller than the 256 bytes and %d specials", vocabSize, len(specials))
	}
	// Count words.
	counts := map[string]int{}
	for _, text := range texts {
		c := []rune(text)
		pos := 0
		for _, n := range splitGPT2(c) {
			var b strings.Builder
			for _, by := range []byte(string(c[pos : pos+n])) {
				b.WriteRune(byteToRune[by])
			}
			counts[b.String()]++
			pos += n
		}
	}
	type word struct {
		syms  []string
		count int
	}
	words := make([]word, 0, len(counts))
	for w, n := range counts {
		var syms []string
		for _, r := range w {
			syms = append(syms, string(r))
		}
		words = append(words, word{syms, n})
	}
	sort.Slice(words, func(i, j int) bool { return strings.Join(words[i].syms, "") < strings.Join(words[j].syms, "") })

	for b := 0; b < 256; b++ {
		tokens = append(tokens, string(byteToRune[b]))
	}
	known := map[string]bool{}
	for _, t := range tokens {
		known[t] = true
	}
	type pair struct{ a, b string }
	for len(merges) < nMerges {
		pc := map[pair]int{}
		for _, w := range words {
			for i := 0; i+1 < len(w.syms); i++ {
				pc[pair{w.syms[i], w.syms[i+1]}] += w.count
			}
		}
		var best pair
		bestN := 0
		for p, n := range pc {
			if n > bestN || (n == bestN && (p.a+" "+p.b) < (best.a+" "+best.b)) {
				best, bestN = p, n
			}
		}
		if bestN < 2 {
			break // nothing left worth merging
		}
		merged := best.a + best.b
		merges = append(merges, best.a+" "+best.b)
		if !known[merged] {
			known[merged] = true
			tokens = append(tokens, merged)
		}
		for wi := range words {
			s := words[wi].syms
			out := s[:0]
			for i := 0; i < len(s); i++ {
				if i+1 < len(s) && s[i] == best.a && s[i+1] == best.b {
					out = append(out, merged)
					i++
				} else {
					out = append(out, s[i])
				}
			}
			words[wi].syms = out
		}
	}
	tokens = append(tokens, specials...)
	return tokens, merges, nil
}
