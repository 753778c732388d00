"""Long-walk drift: the dream against the engine's rendered truth over 200 explorer steps in 8 unseen
worlds, per span: PSNR, copy-last PSNR, sharpness ratio, colour-histogram distance; and the revisit test.
The same figures as `worldgen eval` prints (training/long_walk.py); this runs only them.

    python bench/long_walk.py [MODEL] [STEPS] [SAMPLE_STEPS] [TEMPERATURE]
    # MODEL: a model folder or 'bundled' (default); SAMPLE_STEPS and TEMPERATURE override the model's sampler
"""
import dataclasses
import sys

from training.long_walk import long_walk, table_text
from worldgen.model.runner import Generator
from worldgen.model.store import load_model

if __name__ == "__main__":
    model = load_model(sys.argv[1] if len(sys.argv) > 1 else "bundled")
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    if len(sys.argv) > 3:
        model.config = dataclasses.replace(model.config, sample_steps=int(sys.argv[3]))
    if len(sys.argv) > 4:
        model.config = dataclasses.replace(model.config, sample_temperature=float(sys.argv[4]))
    print(table_text(long_walk(Generator(model), steps=steps)[0]))
