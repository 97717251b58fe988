"""A streaming reader of the LZ4 frame format, in the shape :class:`_base.DecompressReader` drives.

joblib writes ``joblib.dump(obj, path, compress="lz4")`` (and ``.lz4`` file names) as one LZ4 frame
(``lz4.frame.LZ4FrameFile``), and ``joblib.load`` reads it back with the ``lz4`` package, which loopwarden does not
depend on. The format (lz4's ``doc/lz4_Frame_format.md`` and ``doc/lz4_Block_format.md``) is small enough to read
here: a frame header, blocks (each stored or LZ4-compressed, optionally followed by a checksum) up to an end mark,
an optional content checksum. Checksums are not verified: the loader refuses a frame whose checksum is wrong, so
reading it anyway only scans bytes no loader unpickles. Skippable frames (which the ``lz4`` reader skips) yield
nothing. A frame that needs a dictionary, or one that breaks the format, raises ``ValueError`` (a corrupt stream).
"""

from __future__ import annotations

import struct
from typing import Final

MAGIC: Final = b"\x04\x22\x4d\x18"
_SKIPPABLE_MASK: Final = 0xFFFFFFF0
_SKIPPABLE: Final = 0x184D2A50
_WINDOW: Final = 1 << 16
"""How far back a match may reach (offsets are 16-bit); linked blocks match into the previous blocks' output."""
_BLOCK_SIZES: Final = {4: 1 << 16, 5: 1 << 18, 6: 1 << 20, 7: 1 << 22}
"""The maximum block sizes a frame descriptor may name (its BD byte's bits 4-6)."""


def decompress_block(block: bytes, history: bytes, limit: int) -> bytes:
    """One LZ4 block, given the output before it that its matches may reach (``history``); at most ``limit``
    bytes of output (the frame's block size), as the lz4 library refuses a block that decodes to more."""
    out = bytearray(history)
    start = len(out)
    pos, end = 0, len(block)
    while True:
        if pos >= end:
            raise ValueError("LZ4 block ends inside a sequence")
        token = block[pos]
        pos += 1
        literals = token >> 4
        if literals == 15:
            while True:
                if pos >= end:
                    raise ValueError("LZ4 block ends inside a literal length")
                extra = block[pos]
                pos += 1
                literals += extra
                if extra != 255:
                    break
        if pos + literals > end:
            raise ValueError("LZ4 literals run past the block")
        out += block[pos : pos + literals]
        pos += literals
        if len(out) - start > limit:
            raise ValueError("LZ4 block decodes to more than the frame's block size")
        if pos == end:
            return bytes(out[start:])  # the last sequence has literals only
        if pos + 2 > end:
            raise ValueError("LZ4 block ends inside a match offset")
        offset = block[pos] | block[pos + 1] << 8
        pos += 2
        length = token & 15
        if length == 15:
            while True:
                if pos >= end:
                    raise ValueError("LZ4 block ends inside a match length")
                extra = block[pos]
                pos += 1
                length += extra
                if extra != 255:
                    break
        length += 4
        if offset == 0 or offset > len(out):
            raise ValueError("LZ4 match reaches before the start of the output")
        if len(out) - start + length > limit:
            raise ValueError("LZ4 block decodes to more than the frame's block size")
        src = len(out) - offset
        if offset >= length:
            out += out[src : src + length]
        else:  # an overlapping copy repeats the last `offset` bytes
            pattern = bytes(out[src:])
            out += (pattern * (length // offset + 1))[:length]


class Lz4FrameDecompressor:
    """One LZ4 frame, fed in pieces (zlib's ``decompressobj`` interface: ``decompress(data, max_length)``,
    ``unconsumed_tail``, ``unused_data``, ``eof``, ``needs_input``). Output is held back past ``max_length``."""

    def __init__(self) -> None:
        self._in = bytearray()
        self._out = bytearray()
        self._history = b""
        self._state = "magic"
        self._skip = 0
        self._block_max = 0
        self._block_checksum = False
        self._content_checksum = False
        self._linked = True
        self.unconsumed_tail = b""
        self.unused_data = b""
        self.eof = False
        self._done = False
        self._starved = True

    @property
    def needs_input(self) -> bool:
        return self._starved and not self._out

    def decompress(self, data: bytes, max_length: int) -> bytes:
        self._in += data
        self._starved = False
        while len(self._out) < max_length and not self._done:
            if not self._step():
                self._starved = True  # the next header or block is not all here
                break
        out = bytes(self._out[:max_length])
        del self._out[:max_length]
        self.eof = self._done and not self._out  # reported once all output is handed back
        return out

    def _take(self, n: int) -> bytes | None:
        if len(self._in) < n:
            return None
        piece = bytes(self._in[:n])
        del self._in[:n]
        return piece

    def _finish(self) -> None:
        self.unused_data = bytes(self._in)
        self._in.clear()
        self._done = True

    def _step(self) -> bool:
        """Advance by one header or block; False when more input is needed."""
        state = self._state
        if state == "magic":
            head = self._take(4)
            if head is None:
                return False
            (magic,) = struct.unpack("<I", head)
            if head == MAGIC:
                self._state = "descriptor"
            elif magic & _SKIPPABLE_MASK == _SKIPPABLE:
                self._state = "skip-size"
            else:
                raise ValueError("not an LZ4 frame")
            return True
        if state == "skip-size":
            size = self._take(4)
            if size is None:
                return False
            (self._skip,) = struct.unpack("<I", size)
            self._state = "skipping"
            return True
        if state == "skipping":
            n = min(self._skip, len(self._in))
            del self._in[:n]
            self._skip -= n
            if self._skip:
                return False
            self._finish()
            return False
        if state == "descriptor":
            return self._descriptor()
        if state == "block":
            return self._block()
        if state == "checksum":
            if self._take(4) is None:
                return False
            self._finish()
            return False
        raise AssertionError(state)

    def _descriptor(self) -> bool:
        if len(self._in) < 2:
            return False
        flg, bd = self._in[0], self._in[1]
        if flg >> 6 != 1:
            raise ValueError("LZ4 frame of an unknown version")
        if flg & 0x02 or bd & 0x8F:
            raise ValueError("LZ4 frame descriptor with reserved bits set")
        if flg & 0x01:
            raise ValueError("LZ4 frame that needs a dictionary")
        size = 2 + (8 if flg & 0x08 else 0) + 1  # FLG, BD, content size, header checksum
        if self._take(size) is None:
            return False
        block = (bd >> 4) & 7
        if block not in _BLOCK_SIZES:
            raise ValueError("LZ4 frame with an invalid block size")
        self._block_max = _BLOCK_SIZES[block]
        self._linked = not flg & 0x20
        self._block_checksum = bool(flg & 0x10)
        self._content_checksum = bool(flg & 0x04)
        self._state = "block"
        return True

    def _block(self) -> bool:
        if len(self._in) < 4:
            return False
        (word,) = struct.unpack_from("<I", self._in)
        if word == 0:
            del self._in[:4]
            if self._content_checksum:
                self._state = "checksum"
                return True
            self._finish()
            return False
        size = word & 0x7FFFFFFF
        if size > self._block_max:
            raise ValueError("LZ4 block larger than the frame's block size")
        whole = 4 + size + (4 if self._block_checksum else 0)
        if len(self._in) < whole:
            return False
        block = bytes(self._in[4 : 4 + size])
        del self._in[:whole]
        if word & 0x80000000:
            out = block  # stored uncompressed
        else:
            out = decompress_block(block, self._history if self._linked else b"", self._block_max)
        self._out += out
        if self._linked:
            self._history = (self._history + out)[-_WINDOW:]
        return True
