package tokenizer

import (
	"container/heap"
	"strings"
	"unicode/utf8"
)

// byteToRune is GPT-2's map from bytes to printable code points: bytes that
// are printable Latin-1 stand for themselves, the others take code points
// from 256 up, in order.
var byteToRune, runeToByte = func() ([256]rune, map[rune]byte) {
	var b2r [256]rune
	r2b := map[rune]byte{}
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff) {
			b2r[b] = rune(b)
		} else {
			b2r[b] = rune(256 + n)
			n++
		}
		r2b[b2r[b]] = byte(b)
	}
	return b2r, r2b
}()

// fragment is a piece of the input: raw text, or a token already chosen.
type fragment struct {
	text  string
	token int32 // -1 for text
}

// partition splits text around special tokens, longest first. Without
// parseSpecial, control and unknown tokens are left as text, but
// user-defined tokens are still matched (llama.cpp's
// tokenizer_st_partition).
func (t *Tokenizer) partition(text string, parseSpecial bool) []fragment {
	frags := []fragment{{text: text, token: -1}}
	for _, id := range t.specials {
		ty := t.types[id]
		if !parseSpecial && (ty == typeControl || ty == typeUnknown) {
			continue
		}
		special := t.tokens[id]
		if special == "" {
			continue
		}
		var next []fragment
		for _, f := range frags {
			if f.token >= 0 || !strings.Contains(f.text, special) {
				next = append(next, f)
				continue
			}
			parts := strings.Split(f.text, special)
			for i, p := range parts {
				if i > 0 {
					next = append(next, fragment{token: id})
				}
				if p != "" {
					next = append(next, fragment{text: p, token: -1})
				}
			}
		}
		frags = next
	}
	return frags
}

// Encode tokenizes text. addSpecial adds BOS (and EOS) where the model asks
// for them; parseSpecial lets control tokens written in the text (such as
// "<|im_start|>") become their tokens.
func (t *Tokenizer) Encode(text string, addSpecial, parseSpecial bool) []int32 {
	var out []int32
	if addSpecial && t.AddBOS && t.BOS >= 0 {
		out = append(out, t.BOS)
	}
	prevSpecial := true // SentencePiece prefixes the first text with a space
	if text != "" {
		for _, f := range t.partition(text, parseSpecial) {
			if f.token >= 0 {
				out = append(out, f.token)
				prevSpecial = true
				continue
			}
			switch t.Kind {
			case SPM:
				s := f.text
				if t.addSpacePrefix && prevSpecial {
					s = " " + s
				}
				out = t.encodeSPM(strings.ReplaceAll(s, " ", "▁"), out)
			case BPE:
				out = t.encodeBPE(f.text, out)
			}
			prevSpecial = false
		}
	}
	if addSpecial && t.AddEOS && t.EOS >= 0 {
		out = append(out, t.EOS)
	}
	return out
}

// symbol is a span of the text being merged, in a linked list.
type symbol struct {
	start, n   int // byte span in the text
	prev, next int
}

// bigram is a candidate merge of two adjacent symbols.
type bigram struct {
	left, right int
	score       float64 // SPM: higher first; BPE: −rank
	size        int
}

type bigramQueue []bigram

func (q bigramQueue) Len() int { return len(q) }
func (q bigramQueue) Less(i, j int) bool {
	if q[i].score != q[j].score {
		return q[i].score > q[j].score
	}
	return q[i].left < q[j].left // ties: leftmost first
}
func (q bigramQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *bigramQueue) Push(x any)   { *q = append(*q, x.(bigram)) }
func (q *bigramQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// splitChars makes one symbol per UTF-8 character of text.
func splitChars(text string) []symbol {
	var syms []symbol
	for i := 0; i < len(text); {
		_, n := utf8.DecodeRuneInString(text[i:])
		if n == 0 {
			n = 1
		}
		syms = append(syms, symbol{start: i, n: n, prev: len(syms) - 1, next: len(syms) + 1})
		i += n
	}
	if len(syms) > 0 {
		syms[len(syms)-1].next = -1
	}
	return syms
}

// merge runs the merge loop: score(a, b) gives a pair's priority, ok=false
// when the pair may not merge. It returns the surviving symbols and, for
// SPM's resegmentation, which pair each merged text came from.
func merge(text string, syms []symbol, score func(a, b string) (float64, bool)) map[string][2]int {
	rev := map[string][2]int{}
	q := &bigramQueue{}
	try := func(l, r int) {
		if l < 0 || r < 0 {
			return
		}
		a := text[syms[l].start : syms[l].start+syms[l].n]
		b := text[syms[r].start : syms[r].start+syms[r].n]
		s, ok := score(a, b)
		if !ok {
			return
		}
		heap.Push(q, bigram{left: l, right: r, score: s, size: len(a) + len(b)})
		rev[a+b] = [2]int{l, r}
	}
	for i := 1; i < len(syms); i++ {
		try(i-1, i)
	}
	for q.Len() > 0 {
		bg := heap.Pop(q).(bigram)
		l, r := &syms[bg.left], &syms[bg.right]
		if l.n == 0 || r.n == 0 || l.n+r.n != bg.size || l.next != bg.right {
			continue // stale: one side was merged already
		}
		l.n += r.n
		r.n = 0
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = bg.left
		}
		try(l.prev, bg.left)
		try(bg.left, l.next)
	}
	return rev
}

// encodeSPM is SentencePiece's BPE over scores, with byte fallback.
func (t *Tokenizer) encodeSPM(text string, out []int32) []int32 {
	syms := splitChars(text)
	rev := merge(text, syms, func(a, b string) (float64, bool) {
		id, ok := t.toID[a+b]
		if !ok {
			return 0, false
		}
		var s float64
		if t.scores != nil {
			s = float64(t.scores[id])
		}
		return s, true
	})
	var reseg func(i int)
	reseg = func(i int) {
		s := text[syms[i].start : syms[i].start+syms[i].n]
		if id, ok := t.toID[s]; ok {
			out = append(out, id)
			return
		}
		if p, ok := rev[s]; ok {
			reseg(p[0])
			reseg(p[1])
			return
		}
		for j := 0; j < len(s); j++ {
			if id := t.byteToken[s[j]]; id >= 0 {
				out = append(out, id)
			} else if t.UNK >= 0 {
				out = append(out, t.UNK)
			}
		}
	}
	for i := 0; i >= 0 && i < len(syms); i = syms[i].next {
		reseg(i)
	}
	return out
}

// encodeBPE pre-tokenizes text, maps each word's bytes to GPT-2's
// characters, and merges by rank.
func (t *Tokenizer) encodeBPE(text string, out []int32) []int32 {
	cpts := []rune(text)
	pos := 0
	var word strings.Builder
	for _, n := range t.split(cpts) {
		word.Reset()
		for _, b := range []byte(string(cpts[pos : pos+n])) {
			word.WriteRune(byteToRune[b])
		}
		pos += n
		w := word.String()
		if t.ignoreMerges {
			if id, ok := t.toID[w]; ok {
				out = append(out, id)
				continue
			}
		}
		syms := splitChars(w)
		merge(w, syms, func(a, b string) (float64, bool) {
			r, ok := t.ranks[a+" "+b]
			return -float64(r), ok
		})
		for i := 0; i >= 0 && i < len(syms); i = syms[i].next {
			s := w[syms[i].start : syms[i].start+syms[i].n]
			if id, ok := t.toID[s]; ok {
				out = append(out, id)
				continue
			}
			// Not in the vocabulary: each byte of it that is a token.
			for j := 0; j < len(s); j++ {
				if id, ok := t.toID[s[j:j+1]]; ok {
					out = append(out, id)
				}
			}
		}
	}
	return out
}
