"""Render and recording throughput table; the same as `worldgen bench render`."""
from worldgen.benchmarks import bench_render

if __name__ == "__main__":
    print(bench_render())
