// Package gguf reads and writes GGUF, the checkpoint format of llama.cpp.
//
// Read and Write handle the container for any architecture: the header, typed
// metadata kept in file order, tensor infos and aligned tensor data. Read
// checks every count and length against the buffer before allocating, so a
// corrupt or hostile file fails with an error instead of exhausting memory.
//
// Load and Save convert between a GGUF file and shrink's model.Model for the
// llama family (general.architecture "llama", and "qwen2", whose q/k/v
// projections carry biases). GGUF tensor names (token_embd.weight,
// blk.N.attn_q.weight, ...) become the canonical Hugging Face names of package
// model, GGUF's ne order is reversed into PyTorch shapes, and quantized tensors
// keep their block bytes. llama.cpp's llama RoPE rotates consecutive pairs,
// so Save permutes rotate-half (Hugging Face) q/k rows into pairs; qwen2 uses
// NeoX RoPE in llama.cpp and is stored in the rotate-half layout.
package gguf
