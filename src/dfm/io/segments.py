"""Join video-only H.264 segments into one file without re-encoding, and mux the source's audio once.

A long render is encoded in frame-range chunks, each by its own `VideoWriter` (same codec settings, the
input's timestamps, no audio). Each segment is a closed run of frames that starts on the keyframe its
encoder puts first, so the segments can be concatenated packet for packet:

    join_segments([seg0, seg1, seg2], out, audio_from=src, metadata={...}, rotation=info.rotation)

The joined file has one video stream whose packets are the segments' packets, unchanged and in order
(their pts are the input's: frame count and timestamps are kept), and the source's first audio stream
copied packet for packet (`_AudioCopy`, the writer's own audio path), interleaved by time. Segments
must share their stream parameters (codec, size, pixel format, SPS/PPS); a mismatch is an error, not a
silently broken file.
"""

from __future__ import annotations

import contextlib
import os
from fractions import Fraction
from pathlib import Path
from typing import Mapping, Sequence

import av

from dfm.errors import DfmError
from dfm.io.files import atomic_output
from dfm.io.video import _MP4_STANDARD_TAGS, _AudioCopy, container_format


def join_segments(segments: Sequence[str | os.PathLike], output: str | os.PathLike, *,
                  audio_from: str | os.PathLike | None = None, metadata: Mapping[str, str] | None = None,
                  rotation: int = 0) -> int:
    """Concatenate the video streams of `segments` (in order) into `output`, atomically; returns the
    number of video packets (frames) written. `audio_from`: a file whose first audio stream is copied in;
    `metadata`: container tags (as VideoWriter's); `rotation`: the display rotation to tag."""
    if not segments:
        raise ValueError("no segments to join")
    output = Path(output)
    fmt = container_format(output)
    metadata = dict(metadata or {})
    options = {}
    if fmt in ("mp4", "mov"):  # the same muxer flags as VideoWriter: the joined file is laid out like a serial one
        options["movflags"] = "+faststart"
        if any(k not in _MP4_STANDARD_TAGS for k in metadata):
            options["movflags"] += "+use_metadata_tags"
    with atomic_output(output, suffix=output.suffix) as tmp, contextlib.ExitStack() as stack:
        out = stack.enter_context(av.open(str(tmp), mode="w", format=fmt, options=options))
        for key, value in metadata.items():
            out.metadata[key] = str(value)
        first = stack.enter_context(av.open(str(segments[0])))
        template = first.streams.video[0]
        stream = out.add_stream_from_template(template)
        stream.time_base = template.time_base
        if rotation:
            stream.set_display_rotation(rotation)
        audio = _AudioCopy(Path(audio_from), out) if audio_from is not None else None
        if audio is not None:
            stack.callback(audio.close)
        written, last_dts = 0, None
        for k, path in enumerate(segments):
            seg = first if k == 0 else stack.enter_context(av.open(str(path)))
            src = seg.streams.video[0]
            _check_compatible(template, src, Path(path))
            for packet in seg.demux(src):
                if packet.size == 0:
                    continue
                if packet.dts is not None and last_dts is not None and packet.dts * packet.time_base <= last_dts:
                    raise DfmError(f"cannot join {Path(path).name}: its decode times overlap the previous segment's")
                last_dts = packet.dts * packet.time_base if packet.dts is not None else last_dts
                pts_time = packet.pts * packet.time_base if packet.pts is not None else None
                packet.stream = stream
                out.mux(packet)
                written += 1
                if audio is not None and pts_time is not None:
                    audio.copy_until(Fraction(pts_time))
            if k > 0:
                seg.close()
        if audio is not None:
            audio.copy_until(None)
    return written


def _check_compatible(template: av.VideoStream, other: av.VideoStream, path: Path) -> None:
    a, b = template.codec_context, other.codec_context
    mine = (a.name, a.width, a.height, a.format.name if a.format else None, bytes(a.extradata or b""))
    theirs = (b.name, b.width, b.height, b.format.name if b.format else None, bytes(b.extradata or b""))
    if mine != theirs:
        raise DfmError(f"cannot join {path.name}: its stream parameters differ from the first segment's "
                       f"({mine[:4]} vs {theirs[:4]}{', SPS/PPS differ' if mine[4] != theirs[4] else ''})")
