package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// Piece returns the bytes a token stands for. Control and unknown tokens
// give nothing unless special is set (then their text); byte tokens give
// their byte, which may be part of a UTF-8 character.
func (t *Tokenizer) Piece(id int32, special bool) []byte {
	if id < 0 || int(id) >= len(t.tokens) {
		return nil
	}
	text, ty := t.tokens[id], t.types[id]
	switch {
	case ty == typeControl || ty == typeUnknown:
		if !special {
			return nil
		}
		return []byte(text)
	case ty == typeUserDefined:
		return []byte(text)
	case ty == typeByte:
		if t.Kind == SPM {
			var b byte
			if len(text) == 6 && strings.HasPrefix(text, "<0x") {
				for _, c := range text[3:5] {
					b = b<<4 | hexVal(c)
				}
			}
			return []byte{b}
		}
		return decodeBPEText(text)
	case t.Kind == SPM:
		return []byte(strings.ReplaceAll(text, "▁", " "))
	default:
		return decodeBPEText(text)
	}
}

func hexVal(c rune) byte {
	switch {
	case c >= '0' && c <= '9':
		return byte(c - '0')
	case c >= 'A' && c <= 'F':
		return byte(c - 'A' + 10)
	case c >= 'a' && c <= 'f':
		return byte(c - 'a' + 10)
	}
	return 0
}

// decodeBPEText maps GPT-2's characters back to bytes; characters outside
// the map are kept as their UTF-8.
func decodeBPEText(s string) []byte {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if b, ok := runeToByte[r]; ok {
			out = append(out, b)
		} else {
			out = utf8.AppendRune(out, r)
		}
	}
	return out
}

// Decode joins the pieces of ids into text (control tokens left out). As
// llama.cpp's detokenizer does for SentencePiece vocabularies, it drops the
// space that encoding put in front of the text.
func (t *Tokenizer) Decode(ids []int32) string {
	var b []byte
	first := true
	for _, id := range ids {
		p := t.Piece(id, false)
		if first && len(p) > 0 {
			first = false
			p = t.stripPrefixSpace(p)
		}
		b = append(b, p...)
	}
	return string(b)
}

// stripPrefixSpace drops the space SentencePiece encoding added in front
// of the text from the first token's piece (llama.cpp's lstrip).
func (t *Tokenizer) stripPrefixSpace(p []byte) []byte {
	if t.Kind == SPM && t.addSpacePrefix && len(p) > 0 && p[0] == ' ' {
		return p[1:]
	}
	return p
}

// Decoder turns a stream of tokens into text without ever splitting a
// UTF-8 character: bytes of an unfinished character wait for the next
// token. Use one Decoder per generated sequence.
type Decoder struct {
	t       *Tokenizer
	pending []byte
	started bool
}

// NewDecoder returns a Decoder for t.
func (t *Tokenizer) NewDecoder() *Decoder { return &Decoder{t: t} }

// Next adds a token and returns the text that is now complete (maybe "").
func (d *Decoder) Next(id int32) string {
	p := d.t.Piece(id, false)
	if !d.started && len(p) > 0 {
		d.started = true
		p = d.t.stripPrefixSpace(p)
	}
	d.pending = append(d.pending, p...)
	n := completeUTF8(d.pending)
	out := string(d.pending[:n])
	d.pending = append(d.pending[:0], d.pending[n:]...)
	return out
}

// Flush returns what is left (invalid UTF-8 becomes U+FFFD).
func (d *Decoder) Flush() string {
	out := strings.ToValidUTF8(string(d.pending), "\uFFFD")
	d.pending = d.pending[:0]
	return out
}

// completeUTF8 is the length of the longest prefix of b that does not end
// inside a UTF-8 character that more bytes could still complete.
func completeUTF8(b []byte) int {
	// Look back at most 3 bytes for the start of an unfinished character.
	for back := 1; back <= 3 && back <= len(b); back++ {
		c := b[len(b)-back]
		if c&0xc0 == 0x80 {
			continue // a continuation byte: keep looking for the lead
		}
		need := 0
		switch {
		case c&0xe0 == 0xc0:
			need = 2
		case c&0xf0 == 0xe0:
			need = 3
		case c&0xf8 == 0xf0:
			need = 4
		}
		if need > back {
			return len(b) - back
		}
		return len(b)
	}
	return len(b)
}
