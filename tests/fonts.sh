#!/usr/bin/env bash
# A CJK font for the report charts (flows/reports/fonts.py): Debian's fonts-noto-cjk, installed if no
# CJK font it knows is on the machine. Needs root (or sudo) and apt-get; otherwise says what to do.
set -euo pipefail

FONTS=(/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
       /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
       /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc)
for font in "${FONTS[@]}" ${PROPBOT_CJK_FONT:+"$PROPBOT_CJK_FONT"}; do
    [ -f "$font" ] && exit 0
done

if ! command -v apt-get >/dev/null 2>&1; then
    echo "fonts: no CJK font found; install Noto Sans CJK SC and set PROPBOT_CJK_FONT to its file" >&2
    exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "fonts: installing fonts-noto-cjk (Chinese labels in the report charts)" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends fonts-noto-cjk >/dev/null
