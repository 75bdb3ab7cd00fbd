"What measures: sample-quality metrics and throughput benchmarks."
