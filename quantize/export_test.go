package quantize

// OutputCopyKey lets the external tests check the key against format/gguf's.
const OutputCopyKey = outputCopyKey
