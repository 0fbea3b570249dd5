#!/usr/bin/env bash
# Document reading benchmark: the CPU `markgate check` (release) spends on a mail carrying
#   sheet     one .xlsx of ~820 KB whose sheet1.xml is ~190 MB of numeric cells
#             (`<c><v>123</v></c>`) and an OFFICIAL-SENSITIVE page header;
#   sheets    the same mail with COPIES such attachments;
#   text      COPIES .docx of ~440 KB, each ~100 MB of Word paragraphs (text, read as XML);
# against a peer in the same run: `unzip -p` inflating sheet1.xml alone (the least any reader
# of the sheet must do), so `sheet / unzip` is the cost of reading over inflating. The
# mails with COPIES documents show the per-message budget: once the message's documents have
# expanded to 256 MiB the rest are not read (the message is refused unreadable), so their cost
# stays bounded however many documents a mail carries.
#
# Usage: tests/bench/documents.sh        (ROWS=110000 COPIES=10 ROUNDS=3)
# Env: BASELINE_BIN (another markgate binary, e.g. one built from main, measured as "before"
#      in the same rounds); MARKGATE_BIN (default: target/release/markgate, built if missing).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROWS=${ROWS:-110000}
COPIES=${COPIES:-10}
ROUNDS=${ROUNDS:-3}
BASELINE_BIN=${BASELINE_BIN:-}
MARKGATE_BIN=${MARKGATE_BIN:-$ROOT/target/release/markgate}

for tool in python3 unzip /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install -y python3 unzip time)" >&2; exit 2; }
done
if [ ! -x "$MARKGATE_BIN" ]; then
  (cd "$ROOT" && cargo build --release --bin markgate)
fi

WORK=$(mktemp -d /tmp/markgate-documents-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

python3 - "$WORK" "$ROWS" "$COPIES" <<'EOF'
import base64, sys, zipfile
work, rows, copies = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
CT = '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/%s" ContentType="application/vnd.openxmlformats-officedocument.%s"/></Types>'
cells = b"<c><v>123</v></c>" * 100
with zipfile.ZipFile(f"{work}/sheet.xlsx", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    z.writestr("[Content_Types].xml", CT % ("xl/worksheets/sheet1.xml", "spreadsheetml.worksheet+xml"))
    with z.open("xl/worksheets/sheet1.xml", "w") as f:
        f.write(b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>')
        for r in range(rows):
            f.write(b'<row r="%d">' % (r + 1) + cells + b"</row>")
        f.write(b"</sheetData><headerFooter><oddHeader>&amp;COFFICIAL-SENSITIVE</oddHeader></headerFooter></worksheet>")
paragraphs = b"".join(b"<w:p><w:r><w:t>word %d</w:t></w:r></w:p>" % (i % 10) for i in range(1000))
with zipfile.ZipFile(f"{work}/text.docx", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    z.writestr("[Content_Types].xml", CT % ("word/document.xml", "wordprocessingml.document.main+xml"))
    with z.open("word/document.xml", "w") as f:
        f.write(b'<w:document xmlns:w="w"><w:body>')
        for _ in range(100_000_000 // len(paragraphs)):
            f.write(paragraphs)
        f.write(b"</w:body></w:document>")

def mail(name, file, ctype, count):
    encoded = base64.b64encode(open(f"{work}/{file}", "rb").read()).decode()
    body = "\r\n".join(encoded[i:i + 76] for i in range(0, len(encoded), 76))
    parts = "".join(
        f'--b1\r\nContent-Type: {ctype}; name="{i}{file}"\r\nContent-Disposition: attachment; '
        f'filename="{i}{file}"\r\nContent-Transfer-Encoding: base64\r\n\r\n{body}\r\n'
        for i in range(count))
    with open(f"{work}/{name}.eml", "w") as out:
        out.write("From: sam.smith@westmidlands.pnn.police.uk\r\nTo: jo@gmail.com\r\nSubject: figures\r\n"
                  'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n'
                  "--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n" + parts + "--b1--\r\n")

mail("sheet", "sheet.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", 1)
mail("sheets", "sheet.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", copies)
mail("text", "text.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", copies)
EOF

# CPU seconds (user + system) of a command
cpu() {
  /usr/bin/time -f "%U %S" -o "$WORK/time" "$@" >/dev/null 2>&1 || true
  # the last line: GNU time writes "Command exited with non-zero status" first when it did
  tail -n 1 "$WORK/time" | awk '{ printf "%.2f", $1 + $2 }'
}

check() {
  (cd "$ROOT" && cpu "$1" check --from sam.smith@westmidlands.pnn.police.uk --to jo@gmail.com "$WORK/$2.eml")
}

echo "sheet1.xml: $(unzip -l "$WORK/sheet.xlsx" | awk '/sheet1.xml/ { printf "%.0f MB", $1 / 1e6 }'); $COPIES copies in the many-document mails"
for round in $(seq "$ROUNDS"); do
  unzip_s=$(cpu unzip -p "$WORK/sheet.xlsx" xl/worksheets/sheet1.xml)
  line="round $round: unzip -p ${unzip_s}s"
  for bin in "$MARKGATE_BIN" ${BASELINE_BIN:+"$BASELINE_BIN"}; do
    label=after
    [ "$bin" = "$MARKGATE_BIN" ] || label=before
    sheet_s=$(check "$bin" sheet)
    ratio=$(awk -v a="$sheet_s" -v b="$unzip_s" 'BEGIN { printf "%.2f", a / b }')
    line="$line | $label: sheet ${sheet_s}s (${ratio}x unzip), sheets $(check "$bin" sheets)s, text $(check "$bin" text)s"
  done
  echo "$line"
done
