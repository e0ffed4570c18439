#!/bin/sh
# Builds the demo model's training and held-out text from Go's own standard
# library source (BSD licence), $(go env GOROOT)/src of the Go in use.
# Each selection is every non-test .go file directly inside the listed
# package folders (no subfolders, no testdata), concatenated byte for byte
# in sorted path order (LC_ALL=C). The two package lists do not overlap.
set -eu
SRC=$(go env GOROOT)/src
OUT=${1:-/tmp/golm}
mkdir -p "$OUT"
TRAIN="bufio bytes context encoding/base64 encoding/binary encoding/csv encoding/hex encoding/json flag fmt go/ast go/parser go/printer go/scanner go/token io net/url os/exec path path/filepath regexp regexp/syntax slices sort strconv strings sync text/scanner text/template text/template/parse time unicode/utf8"
HELDOUT="container/heap container/list container/ring errors maps text/tabwriter unicode/utf16"
select_files() {
	for p in "$@"; do
		for f in "$SRC/$p"/*.go; do
			case "$f" in *_test.go) ;; *) echo "$f" ;; esac
		done
	done | LC_ALL=C sort
}
select_files $TRAIN | xargs cat > "$OUT/train.txt"
select_files $HELDOUT | xargs cat > "$OUT/heldout.txt"
wc -c "$OUT/train.txt" "$OUT/heldout.txt"
