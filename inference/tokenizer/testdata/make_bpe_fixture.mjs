// make_bpe_fixture.mjs builds the byte-level BPE fixtures of the tokenizer tests
// from two independent JavaScript implementations:
//
//   - js-tiktoken 1.0.21 (OpenAI's GPT-2 ranks, tiktoken's merge loop, the
//     pre-tokenizer regex run by V8), and
//   - @huggingface/transformers 3.x (transformers.js: tokenizer.json loading,
//     the HF BPE model with merges, Split and ByteLevel pre-tokenizers).
//
// It writes, into the current folder:
//
//   gpt2_subset_tokenizer.json  a tokenizer.json holding the 256 byte tokens,
//                               every GPT-2 merge the test texts need (in GPT-2
//                               rank order) and <|endoftext|>. Keeping only the
//                               merges that fire on the test texts does not
//                               change their encodings: the merge picked at
//                               each step is the lowest-ranked one present,
//                               and it is kept.
//   bpe_gpt2.json               expected ids (in the subset's numbering) for
//                               hand-made strings and for lines of the shared
//                               texts (stored by file, line number and SHA-256
//                               only), for three pre-tokenizers: GPT-2, Llama 3
//                               ("llama-bpe") and Qwen2.
//   pretok.json                 the pre-token split of hand-made and seeded
//                               random strings under each pattern, as V8's
//                               regex engine computes it.
//
// The regexes are the upstream ones with \s spelled out as Unicode
// White_Space, which is what HF tokenizers (Oniguruma) and tiktoken (Rust
// regex) mean by \s; JavaScript's own \s adds U+FEFF and lacks U+0085. The
// (?i:...) contraction group of Llama 3 / Qwen2 is spelled as llama.cpp does,
// '[sS]|'[tT]|..., since V8 in Node 20 lacks inline modifiers.
//
// Usage (the npm packages live outside the repository):
//
//   mkdir -p /tmp/tokref && cd /tmp/tokref && npm init -y &&
//     npm install --ignore-scripts js-tiktoken@1.0.21 @huggingface/transformers@3.8.1
//   cd inference/tokenizer/testdata &&
//     TOKREF=/tmp/tokref node make_bpe_fixture.mjs ../../../../shared/data
import { createRequire } from "node:module";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

const tokref = process.env.TOKREF || "/tmp/tokref";
const require = createRequire(path.join(tokref, "package.json"));
const { Tiktoken } = require("js-tiktoken/lite");
const gpt2Ranks = require("js-tiktoken/ranks/gpt2");
const { PreTrainedTokenizer } = require("@huggingface/transformers");

const dataDir = process.argv[2];
if (!dataDir) throw new Error("usage: node make_bpe_fixture.mjs SHARED_DATA_DIR");

// ---- patterns ----
const WS = "\\t-\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000";
const S = `[${WS}]`, NS = `[^${WS}]`;
const CONTR = "'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]";
const PATTERNS = {
  gpt2: `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${WS}\\p{L}\\p{N}]+|${S}+(?!${NS})|${S}+`,
  llama3: `(?:${CONTR})|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^${WS}\\p{L}\\p{N}]+[\\r\\n]*|${S}*[\\r\\n]+|${S}+(?!${NS})|${S}+`,
  qwen2: `(?:${CONTR})|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^${WS}\\p{L}\\p{N}]+[\\r\\n]*|${S}*[\\r\\n]+|${S}+(?!${NS})|${S}+`,
};
// The upstream spellings, as tokenizer.json files hold them (transformers.js
// rewrites the (?i:...) group itself).
const HF_PATTERNS = {
  llama3: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  qwen2: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};
const split = (pat, s) => [...s.matchAll(new RegExp(pat, "gu"))].map((m) => m[0]);

// ---- GPT-2 vocabulary and merges, derived from tiktoken's ranks ----
const enc = new Tiktoken(gpt2Ranks);
const b2u = (() => {
  const bs = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n); n++; }
  const m = new Array(256);
  bs.forEach((b, i) => { m[b] = String.fromCodePoint(cs[i]); });
  return m;
})();
const nRanks = 50256;
const tokBytes = [];
for (let r = 0; r < nRanks; r++) tokBytes.push(enc.textMap.get(r));
const rankOf = (bytes) => enc.rankMap.get(Array.from(bytes).join(","));
const str = (bytes) => Array.from(bytes, (b) => b2u[b]).join("");
// The merge that makes token r: BPE of its bytes using only ranks below r
// ends in exactly two parts.
const merges = []; // [leftStr, rightStr, rank]
for (let r = 0; r < nRanks; r++) {
  const b = tokBytes[r];
  if (b.length < 2) continue;
  let parts = Array.from(b, (x) => [x]);
  for (;;) {
    let best = -1, bestRank = Infinity;
    for (let i = 0; i + 1 < parts.length; i++) {
      const rr = rankOf([...parts[i], ...parts[i + 1]]);
      if (rr !== undefined && rr < r && rr < bestRank) { bestRank = rr; best = i; }
    }
    if (best < 0) break;
    parts.splice(best, 2, [...parts[best], ...parts[best + 1]]);
  }
  if (parts.length !== 2) throw new Error(`rank ${r}: ${parts.length} parts`);
  merges.push([str(parts[0]), str(parts[1]), r]);
}
const vocab = {};
for (let r = 0; r < nRanks; r++) vocab[str(tokBytes[r])] = r;
vocab["<|endoftext|>"] = 50256;

function hfTokenizer(vocab, mergeList, pre, ignoreMerges) {
  const pre_tokenizer = pre === "gpt2"
    ? { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true }
    : {
      type: "Sequence", pretokenizers: [
        { type: "Split", pattern: { Regex: HF_PATTERNS[pre] }, behavior: "Isolated", invert: false },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    };
  const json = {
    version: "1.0", truncation: null, padding: null, added_tokens: [], normalizer: null,
    pre_tokenizer, post_processor: null,
    decoder: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null,
      end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: ignoreMerges,
      vocab, merges: mergeList,
    },
  };
  return { json, tok: new PreTrainedTokenizer(json, {}) };
}

// ---- test texts ----
const TRICKY = [
  "", " ", "  ", "   ", "a", " a", "a ", "a  ", "\n", "\n\n", " \n", "\n ", " \n ", "\t", "\t\t x",
  "Hello world", "Hello  world", "Hello   world  ", "  leading", "trailing  ",
  "line1\nline2\n\nline4\n", "a\r\nb\r\n\r\nc", "\r\r\n", "x \n\n y", "   \n  x",
  "I'm sure it's what they'd've said, isn't it? We'll see; you're right.",
  "DON'T SHOUT, HE'S HERE. I'LL GO. WE'VE WON. THEY'RE OK. I'D. I'M",
  "'s 't 're 've 'm 'll 'd 'S 'T 'RE 'VE 'M 'LL 'D 'Re 'lL", "'", "''", "'x", " 's", "l'amour",
  "\u017Fs 's '\u017F",
  "1 12 123 1234 12345 123456 1234567 3.14159 1,000,000",
  "\u0663\u0664\u0665\u0666 \u00BD\u00BE \u216B \u2460\u2461",
  "naïve café résumé", "e\u0301te\u0301", "Ωmega ΑΒΓ", "Привет, мир!", "日本語のテキスト", "中文 字符", "한국어 텍스트",
  "العربية", "עִבְרִית", "हिन्दी", "ไทย",
  "emoji 😀🎉 end", " 😀", "🇺🇸🇬🇧", "👩‍👩‍👧",
  "!!!\n\n", " ?!", ". \n", "...", "—dash–", "wait…", "“quoted” ‘single’", "It’s",
  "â€œ", "â€™s and â€œquotedâ€",
  "a\u00A0b", "\u00A0\u00A0x", "\u3000x", "x\u2028y", "x\u0085y", "x\uFEFFy", "\u200Bzero\u200Dwidth",
  "<|endoftext|>", "a<|endoftext|>b", "<s></s><unk>",
  "def f(x):\n    return x**2  # comment\n\n\tpass\n",
  "https://example.com/path?q=1&r=2#frag", "user@example.com", "$100.00 (50% off!)",
  "\u0000\u0001\u007F", "tab\tsep\tvalues\t",
  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  "The quick brown fox jumps over the lazy dog.",
];

function sha(s) { return createHash("sha256").update(Buffer.from(s, "utf8")).digest("hex"); }
const refs = [];
function addLines(rel, step, max) {
  const text = fs.readFileSync(path.join(dataDir, rel), "utf8");
  const lines = text.split("\n");
  let n = 0;
  for (let i = 0; i < lines.length && n < max; i += step) {
    if (lines[i].trim() === "") continue;
    refs.push({ file: rel, line: i, text: lines[i] });
    n++;
  }
}
addLines("text/tinystories/tinystories_val_first.txt", 83, 80);
addLines("text/wikitext-2/test.txt", 41, 80);
addLines("text/tinyshakespeare/input.txt", 997, 30);

// ---- encode with the full vocabulary, two ways, and trace the merges ----
const mergeRank = new Map(merges.map(([a, b, r]) => [a + " " + b, r]));
const usedRanks = new Set();
function traceBPE(word) {
  let parts = Array.from(word);
  for (;;) {
    let best = -1, bestRank = Infinity;
    for (let i = 0; i + 1 < parts.length; i++) {
      const r = mergeRank.get(parts[i] + " " + parts[i + 1]);
      if (r !== undefined && r < bestRank) { bestRank = r; best = i; }
    }
    if (best < 0) break;
    usedRanks.add(bestRank);
    parts.splice(best, 2, parts[best] + parts[best + 1]);
  }
  return parts.map((p) => vocab[p]);
}
const utf8 = new TextEncoder();
const fullMerges = merges.map(([a, b]) => a + " " + b);
const hfFull = {
  gpt2: hfTokenizer(vocab, fullMerges, "gpt2", false).tok,
  llama3: hfTokenizer(vocab, fullMerges, "llama3", true).tok,
  qwen2: hfTokenizer(vocab, fullMerges, "qwen2", false).tok,
};
const tk = Object.fromEntries(Object.entries(PATTERNS).map(([k, p]) =>
  [k, new Tiktoken({ ...gpt2Ranks, pat_str: p })]));
const hasJSWhitespaceQuirk = (s) => /[\u0085\uFEFF]/.test(s);
const outputTokens = new Set();
function encodeAll(text) {
  const res = {};
  for (const pre of Object.keys(PATTERNS)) {
    const a = tk[pre].encode(text, [], []);
    const traced = split(PATTERNS[pre], text).flatMap((w) => {
      const bw = str(utf8.encode(w));
      if (pre === "llama3" && vocab[bw] !== undefined) { traceBPE(bw); return [vocab[bw]]; }
      return traceBPE(bw);
    });
    if (JSON.stringify(a) !== JSON.stringify(traced)) throw new Error(`${pre} ${JSON.stringify(text)}: tiktoken ${a} vs traced ${traced}`);
    if (!hasJSWhitespaceQuirk(text)) {
      const b = hfFull[pre].encode(text, { add_special_tokens: false });
      if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`${pre} ${JSON.stringify(text)}: tiktoken ${a} vs transformers.js ${b}`);
    }
    a.forEach((id) => outputTokens.add(id));
    res[pre] = a;
  }
  return res;
}
const trickyFull = TRICKY.map((t) => ({ text: t, ...encodeAll(t) }));
const refsFull = refs.map((r) => ({ ...r, ...encodeAll(r.text) }));

// ---- the subset vocabulary ----
const keep = new Set();
for (let r = 0; r < 256; r++) keep.add(r);
for (const r of usedRanks) keep.add(r);
for (const id of outputTokens) keep.add(id);
const keptRanks = [...keep].sort((a, b) => a - b);
const newId = new Map(keptRanks.map((r, i) => [r, i]));
const subVocab = {};
keptRanks.forEach((r, i) => { subVocab[str(tokBytes[r])] = i; });
const eotId = keptRanks.length;
subVocab["<|endoftext|>"] = eotId;
const subMerges = merges.filter(([, , r]) => usedRanks.has(r)).map(([a, b]) => a + " " + b);
const mapIds = (ids) => ids.map((id) => { const n = newId.get(id); if (n === undefined) throw new Error(`id ${id} not kept`); return n; });

const sub = hfTokenizer(subVocab, subMerges, "gpt2", false).json;
sub.added_tokens = [{ id: eotId, content: "<|endoftext|>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }];
const hfSub = {
  gpt2: hfTokenizer(subVocab, subMerges, "gpt2", false).tok,
  llama3: hfTokenizer(subVocab, subMerges, "llama3", true).tok,
  qwen2: hfTokenizer(subVocab, subMerges, "qwen2", false).tok,
};
function subCase(c) {
  const out = {};
  for (const pre of Object.keys(PATTERNS)) {
    out[pre] = mapIds(c[pre]);
    if (!hasJSWhitespaceQuirk(c.text)) {
      const b = hfSub[pre].encode(c.text, { add_special_tokens: false });
      if (JSON.stringify(out[pre]) !== JSON.stringify(b)) throw new Error(`subset ${pre} ${JSON.stringify(c.text)}: ${out[pre]} vs ${b}`);
    }
  }
  return out;
}

fs.writeFileSync("gpt2_subset_tokenizer.json", JSON.stringify(sub) + "\n");
fs.writeFileSync("bpe_gpt2.json", JSON.stringify({
  about: "GPT-2 byte-level BPE encodings by js-tiktoken 1.0.21, checked against transformers.js 3.8.1 (see make_bpe_fixture.mjs); ids are in gpt2_subset_tokenizer.json's numbering",
  tricky: trickyFull.map((c) => ({ text: c.text, ...subCase(c) })),
  lines: refsFull.map((c) => ({ file: c.file, line: c.line, sha256: sha(c.text), ...subCase(c) })),
}) + "\n");

// ---- pre-tokenizer splits, including seeded random strings ----
let seed = 12345;
const rnd = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 4294967296; };
const POOL = [" ", " ", " ", "\t", "\n", "\n", "\r", "a", "b", "B", "é", "1", "2", "\u0663", "!", ".", "'", "'",
  "s", "S", "t", "l", "L", "e", "v", "d", "m", "r", "R", "\u0301", "😀", "\u00A0", "\u3000", "\u0085", "\uFEFF", "中", "\u017F", "_", "\u2028"];
const randomStrings = [];
for (let i = 0; i < 400; i++) {
  const n = Math.floor(rnd() * 16);
  let s = "";
  for (let j = 0; j < n; j++) s += POOL[Math.floor(rnd() * POOL.length)];
  randomStrings.push(s);
}
const pretok = [...TRICKY, ...randomStrings].map((s) => {
  const o = { text: s };
  for (const [k, p] of Object.entries(PATTERNS)) {
    const parts = split(p, s);
    if (parts.join("") !== s) throw new Error(`${k} drops text in ${JSON.stringify(s)}`);
    o[k] = parts;
  }
  return o;
});
fs.writeFileSync("pretok.json", JSON.stringify({
  about: "pre-token splits computed by V8's RegExp (see make_bpe_fixture.mjs for the patterns)",
  patterns: PATTERNS,
  cases: pretok,
}) + "\n");
console.error(`subset: ${keptRanks.length} tokens, ${subMerges.length} merges; ${trickyFull.length} tricky, ${refsFull.length} lines`);
