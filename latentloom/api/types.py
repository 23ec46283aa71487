"""Socket types: plain strings, so plugins can add their own.

A link is allowed when the output type and the input type share a name. ``*`` matches anything, and a
comma-separated type ("IMAGE,MASK") is a union, as in ComfyUI.
"""

ANY = "*"

MODEL = "MODEL"
CLIP = "CLIP"
VAE = "VAE"
CONDITIONING = "CONDITIONING"
LATENT = "LATENT"
IMAGE = "IMAGE"
MASK = "MASK"
INT = "INT"
FLOAT = "FLOAT"
STRING = "STRING"
BOOLEAN = "BOOLEAN"
COMBO = "COMBO"

# Types whose values can be typed into a widget (literals in the API prompt).
WIDGET_TYPES = frozenset({INT, FLOAT, STRING, BOOLEAN, COMBO})


def _names(socket_type: str) -> set[str]:
    return {part.strip() for part in socket_type.split(",") if part.strip()}


def types_compatible(output_type: str, input_type: str) -> bool:
    """Whether a link from an output of ``output_type`` may feed an input of ``input_type``."""
    if output_type == ANY or input_type == ANY:
        return True
    return bool(_names(output_type) & _names(input_type))
