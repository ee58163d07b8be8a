"""Speed and complexity benchmark behind ``dvclic bench`` (a benchmark, not a test).

- :mod:`.timers`: stage timers wrapped around the real objects' methods (CUDA-synchronised),
  peak memory;
- :mod:`.pictures`: the real picture / frames a benchmark codes;
- :mod:`.image`: one registered image codec; :mod:`.video`: one video model config;
- :mod:`.compare`: compressai's autoregressive ``mbt2018`` on the same picture;
- :mod:`.cli`: argument parsing, the table and the JSON line.
"""
