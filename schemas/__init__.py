"""The Avro contract (``avro/*.avsc``), shipped inside the distribution as package data."""
