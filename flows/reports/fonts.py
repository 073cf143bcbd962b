"""A font with Chinese glyphs for the charts, found on disk and handed to matplotlib by file.

matplotlib's default (DejaVu Sans) has no CJK glyphs: every Chinese label would be a row of tofu
boxes. The set-up (``make deps`` -> tests/fonts.sh) installs Debian's fonts-noto-cjk; WenQuanYi
(fonts-wqy-microhei / -zenhei) is taken too, and ``PROPBOT_CJK_FONT`` names any other file.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from matplotlib import font_manager

# (file, family) in order of preference; a .ttc holds several faces, the family picks the SC one.
CANDIDATES: tuple[tuple[str, str], ...] = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", "Noto Sans CJK SC"),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "WenQuanYi Micro Hei"),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", "WenQuanYi Zen Hei"),
)
ENV = "PROPBOT_CJK_FONT"
INSTALL_HINT = "sudo apt-get install fonts-noto-cjk (or: bash tests/fonts.sh), or set PROPBOT_CJK_FONT"


class FontMissing(RuntimeError):
    """No CJK font on this machine: charts would show boxes instead of Chinese."""


def font_file() -> Path:
    """The CJK font file the charts use."""
    override = os.environ.get(ENV)
    if override:
        if not Path(override).is_file():
            raise FontMissing(f"{ENV}={override} is not a file")
        return Path(override)
    for path, _family in CANDIDATES:
        if Path(path).is_file():
            return Path(path)
    raise FontMissing(f"no CJK font found for the charts; {INSTALL_HINT}")


@cache
def cjk_family() -> str:
    """Register the font file with matplotlib's font manager; the family name to draw with."""
    path = font_file()
    font_manager.fontManager.addfont(str(path))
    preferred = dict(CANDIDATES).get(str(path))
    faces = [f.name for f in font_manager.fontManager.ttflist if Path(f.fname) == path]
    if preferred in faces:
        return preferred
    simplified = [name for name in faces if name.endswith(" SC")]
    if simplified or faces:
        return (simplified or faces)[0]
    raise FontMissing(f"matplotlib could not read a font from {path}")
