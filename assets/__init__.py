"""The bundled world model (`world_model/`), installed with worldgen as the package `worldgen_assets`."""
