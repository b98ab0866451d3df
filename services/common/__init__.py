"""What every service shares: settings, the Avro codec, the topic catalogue, telemetry."""

from signalbox.common.codec import AvroCodec, DecodeError, EncodeError
from signalbox.common.errors import SignalboxError
from signalbox.common.settings import Settings
from signalbox.common.topics import TopicSpec, catalogue

__all__ = ["AvroCodec", "DecodeError", "EncodeError", "Settings", "SignalboxError", "TopicSpec",
           "catalogue"]
