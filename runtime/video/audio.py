"""The audio copy: a source file's audio streams moved into the output as the video advances."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sllen.runtime.video.common import _av, _open_input
from sllen.runtime.video.containers import audio_refused

log = logging.getLogger(__name__)


class _AudioCopy:
    """Moves the audio streams of a source file into the output as the video advances.

    Packets are copied untouched when the output container accepts the codec; otherwise they
    are decoded and re-encoded with the container's default audio codec (AAC into .webm
    becomes Opus), because dropping the sound silently is worse than a transcode.
    """

    def __init__(self, source: Path, out: Any, target: Path) -> None:
        av = _av()
        self.source = source
        self._in = _open_input(source)
        self._map: dict[int, tuple[Any, bool]] = {}  # input index -> (output stream, copy?)
        for s in self._in.streams.audio:
            name = s.codec_context.name
            # PCM into MP4: FFmpeg lists it, but copied from an mkv (1/1000 timing) the file
            # fails to finish, after the whole video was enhanced; and few players read PCM
            # in MP4. AAC instead (and likewise for the other codecs in AUDIO_REFUSED).
            if name in out.supported_codecs and not audio_refused(out.format.name, name):
                self._map[s.index] = (out.add_stream_from_template(s), True)
                continue
            enc = out.default_audio_codec
            if not enc or enc == "none":
                log.warning("%s: %s holds no audio; sound dropped", target, out.format.name)
                continue
            o = out.add_stream(enc, rate=_opus_rate(enc, s.rate))
            o.codec_context.layout = "stereo" if s.layout.nb_channels >= 2 else "mono"
            log.warning("%s: %s cannot hold %s audio; re-encoding it as %s",
                        target, out.format.name, name, o.codec_context.name)  # fmt: skip
            self._map[s.index] = (o, False)
        self._out = out
        # AVI cannot store a negative timestamp (AAC's priming packet from an mp4, at -21 ms):
        # FFmpeg then shifted every stream, the video by a rounded frame, leaving a one-frame
        # gap after the first and the picture 19 ms behind the sound. The packet is dropped.
        self._non_negative = out.format.name in _NON_NEGATIVE
        self.left_out = left_out(self._in)
        streams = [self._in.streams[i] for i in self._map]
        self._packets = self._in.demux(streams) if streams else iter(())
        self._pending: Any = None
        self._done = not streams
        self._av = av
        # Per copied stream: the last dts written and the shift added to the source's
        # timestamps. A muxer refuses a dts that does not increase, which is what two
        # recordings joined with `cat`, or a camera that restarts its clock, give.
        self._last_dts: dict[int, int] = {}
        self._shift: dict[int, int] = {}
        self.shifted = 0  # packets moved on past a backward jump, for the warning

    def copy_until(self, seconds: float) -> None:
        av = self._av
        while not self._done:
            packet = self._pending
            if packet is None:
                try:
                    packet = next(self._packets)
                except (StopIteration, av.FFmpegError):  # end (or a damaged tail) of audio
                    self._flush()
                    return
                if packet.dts is None:  # demux's flush packet
                    continue
                self._continue_timeline(packet)
            if packet.time_base is not None and float(packet.dts * packet.time_base) > seconds:
                self._pending = packet  # not yet: keep it for a later frame
                return
            self._pending = None
            out_stream, copy = self._map[packet.stream.index]
            if self._non_negative and packet.pts is not None and packet.pts < 0:
                continue
            if copy:
                packet.stream = out_stream
                self._out.mux(packet)
            else:
                try:
                    frames = packet.decode()
                except av.FFmpegError:
                    continue
                for frame in frames:
                    frame.pts = None  # the encoder's resampler numbers the samples itself
                    self._out.mux(out_stream.encode(frame))

    def _continue_timeline(self, packet: Any) -> None:
        """Move a packet whose dts goes back (or repeats) on to just after the previous one,
        and every later packet of its stream with it: the audio after the jump plays after
        what came before, as the reader does with such video frames."""
        index = packet.stream.index
        shift = self._shift.get(index, 0)
        last = self._last_dts.get(index)
        dts = packet.dts + shift
        if last is not None and dts <= last:
            shift += last + max(1, packet.duration or 0) - dts
            self._shift[index] = shift
            self.shifted += 1
        if shift:
            packet.dts += shift
            if packet.pts is not None:
                packet.pts += shift
        self._last_dts[index] = packet.dts

    def _flush(self) -> None:
        self._done = True
        for out_stream, copy in self._map.values():
            if not copy:
                self._out.mux(out_stream.encode(None))

    def close(self) -> None:
        self._in.close()


_NON_NEGATIVE = ("avi",)  # muxers whose timestamps start at zero (see _AudioCopy)


def left_out(container: Any) -> str:
    """'1 subtitle stream and 2 data streams': what a copy of the video and the audio leaves
    out of `container` ('' when nothing). Extra video streams are the reader's to name."""
    attached = _av().stream.Disposition.attached_pic
    counts: dict[str, int] = {}
    for s in container.streams:
        handler = str(s.metadata.get("handler_name", "")).lower()
        if s.type == "video" and s.disposition & attached:
            kind = "cover picture"
        elif s.type in ("video", "audio"):
            continue
        elif s.type == "data" and "metadata" in handler:
            continue  # a phone's camera metadata track (Apple's mebx): nothing a user sees
        elif s.type == "data" and "timecode" in s.metadata:
            kind = "timecode track"  # a camera's: an editor may miss it, so it is said
        else:
            kind = f"{s.type} stream"  # subtitle, data (sensor tracks), attachment
        counts[kind] = counts.get(kind, 0) + 1
    parts = [f"{n} {kind}{'s' * (n > 1)}" for kind, n in counts.items()]
    return " and ".join([", ".join(parts[:-1]), parts[-1]]) if len(parts) > 1 else "".join(parts)


def _opus_rate(encoder: str, rate: int) -> int:
    # Opus runs at 48 kHz (and a few lower rates); everything else keeps the source rate.
    return 48000 if "opus" in encoder else rate
