"""QR codes as PNG (segno: pure Python, no imaging library)."""

from __future__ import annotations

import io

import segno


def qr_png(text: str, scale: int = 8) -> bytes:
    """``text`` as a QR PNG, error correction M, with the standard quiet zone of 4 modules."""
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="png", scale=scale, border=4)
    return out.getvalue()
