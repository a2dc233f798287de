"""From a run to a model people use: portable adapter folders with model cards (written after each stage), merged
or adapter-only exports (`align export`), and Hub uploads."""
