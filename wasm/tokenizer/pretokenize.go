package tokenizer

import "unicode"

// Pre-tokenizers split text into words before BPE runs on each word. Each
// implements, by hand, one of the regular expressions llama.cpp applies for
// a `tokenizer.ggml.pre` value (llama-vocab.cpp), with the same results:
// Go's regexp has no lookahead, which `\s+(?!\S)` needs, and a hand-written
// scanner is also much faster.

// splitter splits a run of code points into word lengths (in code points).
type splitter func(cpts []rune) []int

type flags struct{ letter, number, space, assigned bool }

func cptFlags(r rune) flags {
	return flags{
		letter:   unicode.IsLetter(r),
		number:   unicode.IsNumber(r),
		space:    unicode.IsSpace(r),
		assigned: r >= 0 && r <= unicode.MaxRune && (unicode.IsPrint(r) || unicode.IsSpace(r) || unicode.In(r, unicode.C, unicode.M, unicode.Z)),
	}
}

// punct is [^\s\p{L}\p{N}] restricted to assigned code points, as llama.cpp
// (whose flags are all zero for unassigned code points) matches it.
func (f flags) punct() bool { return !(f.space || f.letter || f.number) && f.assigned }

// scanner walks one piece of text; outside it, flags are zero and code
// points are -1, as if the piece were the whole text.
type scanner struct {
	c     []rune
	words []int
	prev  int
}

func (s *scanner) at(i int) rune {
	if i < 0 || i >= len(s.c) {
		return -1
	}
	return s.c[i]
}

func (s *scanner) flags(i int) flags {
	if i < 0 || i >= len(s.c) {
		return flags{}
	}
	return cptFlags(s.c[i])
}

// cut ends the current word at end; it returns the word's length.
func (s *scanner) cut(end int) int {
	n := end - s.prev
	if n > 0 {
		s.words = append(s.words, n)
	}
	s.prev = end
	return n
}

// whitespace handles the tail alternatives \s+(?!\S)|\s+ at i; crOrLF,
// when set, first tries \s*[\r\n]+ (llama3 and qwen2). ok is false when no
// whitespace is at i.
func (s *scanner) whitespace(i int, crOrLF bool) (next int, ok bool) {
	n, lastBreak := 0, 0
	for s.flags(i + n).space {
		if r := s.at(i + n); r == '\r' || r == '\n' {
			lastBreak = i + n + 1
		}
		n++
	}
	switch {
	case crOrLF && lastBreak > 0:
		s.cut(lastBreak)
		return lastBreak, true
	case n > 1 && s.at(i+n) != -1:
		// \s+(?!\S): leave the last space to prefix the next word.
		s.cut(i + n - 1)
		return i + n - 1, true
	case n > 0:
		s.cut(i + n)
		return i + n, true
	}
	return i, false
}

// contraction matches 's|'t|'re|'ve|'m|'ll|'d at i (case-insensitively if
// fold) and returns its length, or 0.
func (s *scanner) contraction(i int, fold bool) int {
	if s.at(i) != '\'' {
		return 0
	}
	low := func(r rune) rune {
		if fold {
			return unicode.ToLower(r)
		}
		return r
	}
	a, b := low(s.at(i+1)), low(s.at(i+2))
	switch {
	case a == 's' || a == 't' || a == 'm' || a == 'd':
		return 2
	case (a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'):
		return 3
	}
	return 0
}

// splitGPT2 is 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
func splitGPT2(c []rune) []int {
	s := &scanner{c: c}
	for i := 0; i < len(c); {
		if n := s.contraction(i, false); n > 0 {
			i += s.cut(i + n)
			continue
		}
		f := s.flags(i)
		if c[i] == ' ' {
			f = s.flags(i + 1)
		}
		start := i
		if c[i] == ' ' && (f.letter || f.number || f.punct()) {
			i++
		}
		switch {
		case f.letter:
			for s.flags(i).letter {
				i++
			}
		case f.number:
			for s.flags(i).number {
				i++
			}
		case f.punct():
			for s.flags(i).punct() {
				i++
			}
		}
		if i > start {
			s.cut(i)
			continue
		}
		if next, ok := s.whitespace(i, false); ok {
			i = next
			continue
		}
		i++
		s.cut(i) // matched by nothing: a word of its own
	}
	return s.words
}

// splitLlama3 is (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|
// \p{N}{1,maxDigits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// with maxDigits 3 (Llama 3) or 1 (Qwen2).
func splitLlama3(maxDigits int) splitter {
	return func(c []rune) []int {
		s := &scanner{c: c}
		for i := 0; i < len(c); {
			if n := s.contraction(i, true); n > 0 {
				i += s.cut(i + n)
				continue
			}
			r, f := c[i], s.flags(i)
			// [^\r\n\p{L}\p{N}]?\p{L}+
			if !(r == '\r' || r == '\n' || f.number) && (f.letter || s.flags(i+1).letter) {
				i++
				for s.flags(i).letter {
					i++
				}
				s.cut(i)
				continue
			}
			// \p{N}{1,maxDigits}
			if f.number {
				start := i
				for s.flags(i).number {
					i++
					if i-start >= maxDigits {
						s.cut(i)
						start = i
					}
				}
				s.cut(i)
				continue
			}
			// ' ?[^\s\p{L}\p{N}]+[\r\n]*'. As in llama.cpp, the test of the
			// first code point looks at the space's own flags.
			f2 := f
			if r == ' ' {
				f2 = s.flags(i + 1)
			}
			if !(f2.space || f2.letter || f2.number) && f.assigned {
				if r == ' ' {
					i++
				}
				for s.flags(i).punct() {
					i++
				}
				for s.at(i) == '\r' || s.at(i) == '\n' {
					i++
				}
				s.cut(i)
				continue
			}
			if next, ok := s.whitespace(i, true); ok {
				i = next
				continue
			}
			i++
			s.cut(i)
		}
		return s.words
	}
}

// splitDigits is the regex \p{N}: each number code point is a word, and so
// is each run of other code points between them.
func splitDigits(c []rune) []int {
	var words []int
	run := 0
	for _, r := range c {
		if unicode.IsNumber(r) {
			if run > 0 {
				words = append(words, run)
				run = 0
			}
			words = append(words, 1)
			continue
		}
		run++
	}
	if run > 0 {
		words = append(words, run)
	}
	return words
}

// chain applies splitters in turn, each to every word of the one before,
// as llama.cpp applies a list of regular expressions.
func chain(ss ...splitter) splitter {
	return func(c []rune) []int {
		words := []int{len(c)}
		for _, s := range ss {
			var next []int
			pos := 0
			for _, n := range words {
				next = append(next, s(c[pos:pos+n])...)
				pos += n
			}
			words = next
		}
		return words
	}
}

// preTokenizers maps tokenizer.ggml.pre values to splitters, and says
// whether a word found whole in the vocabulary skips BPE (ignore_merges).
var preTokenizers = map[string]struct {
	split        splitter
	ignoreMerges bool
}{}

func init() {
	llama3 := splitLlama3(3)
	qwen2 := splitLlama3(1)
	digitsThenGPT2 := chain(splitDigits, splitGPT2)
	for _, p := range []string{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "dbrx", "smaug-bpe"} {
		preTokenizers[p] = struct {
			split        splitter
			ignoreMerges bool
		}{llama3, p != "dbrx" && p != "smaug-bpe"}
	}
	for _, p := range []string{"qwen2", "stablelm2", "megrez", "deepseek-r1-qwen", "kormo", "f2llmv2"} {
		preTokenizers[p] = struct {
			split        splitter
			ignoreMerges bool
		}{qwen2, false}
	}
	for _, p := range []string{"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b"} {
		preTokenizers[p] = struct {
			split        splitter
			ignoreMerges bool
		}{digitsThenGPT2, false}
	}
	for _, p := range []string{"gpt-2", "phi-2", "mpt", "olmo", "jais", "trillion", "jina-es", "jina-de", "jina-v2-es", "jina-v2-de", "gigachat", "mellum", "a.x-4.0", "exaone4", "jina-v1-en", "jina-v2-code", "roberta-bpe", "modern-bert"} {
		preTokenizers[p] = struct {
			split        splitter
			ignoreMerges bool
		}{splitGPT2, false}
	}
}
