"""From a file to a result: the analyzer and its cache, the forwards of one action, segments and the segment
reader, live mode, batches and shards.

`demo/` and `train/` use only the names in `__all__`; the stages above import its modules directly.
See docs/design.md for who calls whom.
"""

from merclip.reading.analyzer import AnalysisOptions, Analyzer
from merclip.reading.batch import csv_writer, rows_of
from merclip.reading.clip_analysis import ClipAnalysis, SampledFrame
from merclip.reading.disk_cache import DiskCache
from merclip.reading.live import (CHUNK_SECONDS, HEARING_WINDOW_SECONDS, HISTORY_SECONDS, KEPT_SECONDS,
                                  MICROPHONE_CHANNELS, MICROPHONE_RATES, LiveReading, LiveSession)
from merclip.reading.segment_reader import SegmentPrediction, SegmentReader
from merclip.reading.segments import Segment, SegmentMode, within
from merclip.reading.shards import in_shard, shard_of

__all__ = ["AnalysisOptions", "Analyzer", "CHUNK_SECONDS", "ClipAnalysis", "DiskCache", "HEARING_WINDOW_SECONDS",
           "HISTORY_SECONDS", "KEPT_SECONDS", "LiveReading", "LiveSession", "MICROPHONE_CHANNELS",
           "MICROPHONE_RATES", "SampledFrame", "Segment", "SegmentMode", "SegmentPrediction", "SegmentReader",
           "csv_writer", "in_shard", "rows_of", "shard_of", "within"]
