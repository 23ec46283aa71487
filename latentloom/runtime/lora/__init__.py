"""LoRA files (kohya, LoCon, LyCORIS LoHa/LoKr, diffusers/PEFT) as weight patches on model handles."""
