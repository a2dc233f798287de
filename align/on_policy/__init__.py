"""On-policy rows: sample the current policy on prompts, score its answers, build a stage's rows from them.

`prompts` reads the prompt file; `sampling` shares the prompts across processes and gathers the answers;
`candidates` scores sampled answers (the pair builder's input); `unpaired` makes labelled and best-answer rows;
`generated` runs all of it for a stage, or reuses the rows a stopped run wrote; `rounds` turns a stage with
`rounds: R` into R stages; `checks` validates `data.generate` in a recipe.
"""
