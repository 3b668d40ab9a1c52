"""Study specs (YAML, pydantic) and the runner that executes them on analysis marts."""
