package tokenizer_test

import (
	"fmt"

	"github.com/shrinkml/shrink/inference/tokenizer"
	"github.com/shrinkml/shrink/model"
)

// A toy SentencePiece vocabulary laid out like llama2.c's: <unk>, <s>, </s>,
// the 256 byte tokens, then pieces with their merge scores.
func toyVocab() *model.Tokenizer {
	mt := &model.Tokenizer{Kind: "llama", BOS: 1, EOS: 2, UNK: 0, PAD: -1, AddBOS: true, AddSpacePrefix: true}
	add := func(s string, score float32, typ model.TokenType) {
		mt.Tokens = append(mt.Tokens, s)
		mt.Scores = append(mt.Scores, score)
		mt.Types = append(mt.Types, typ)
	}
	add("<unk>", 0, model.TokenUnknown)
	add("<s>", 0, model.TokenControl)
	add("</s>", 0, model.TokenControl)
	for b := range 256 {
		add(fmt.Sprintf("<0x%02X>", b), 0, model.TokenByte)
	}
	for i, p := range []string{"▁h", "▁hi", "▁", "h", "i", "!"} {
		add(p, -float32(i), model.TokenNormal)
	}
	return mt
}

func Example() {
	tk, err := tokenizer.New(toyVocab())
	if err != nil {
		fmt.Println(err)
		return
	}
	ids := tk.Encode("hi hi!?", true)
	fmt.Println(ids)
	fmt.Printf("%q\n", tk.DecodeAll(ids))

	// Streaming: each token's bytes given the one before.
	prev := -1
	for _, id := range ids {
		fmt.Printf("%q ", tk.Decode(prev, id))
		prev = id
	}
	fmt.Println()
	// Output:
	// [1 260 260 264 66]
	// "hi hi!?"
	// "" "hi" " hi" "!" "?"
}
