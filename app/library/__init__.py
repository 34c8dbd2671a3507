"""What is installed and how to run it: one scan over catalogue variants, conversions, imported and opened files."""
