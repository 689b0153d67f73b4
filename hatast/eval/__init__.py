"""Evaluation core: the benchmark sets and their layout (:mod:`.sets`), the metric protocols (:mod:`.metrics`),
interpolation baselines (:mod:`.baselines`), the one timer (:mod:`.timing`), the published figures the package
knows (:mod:`.published`) and the runner behind ``hatast bench`` (:mod:`.runner`). Scripts, benchmarks and the
README's tables call these; nothing copies them."""
