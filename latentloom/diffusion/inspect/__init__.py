"""Looking inside the UNet: what one forward pass (or a whole sampling run) computes, reduced as it is captured.

- ``architecture``: the block table (kinds, channels, spatial size for a latent, parameters, cross-attention).
- ``reduce``: the reductions (statistics, channel-mean magnitude, PCA-to-RGB, head-averaged token maps,
  attention entropy) applied to tensors the moment the UNet hands them over.
- ``capture``: the UNetObserver that records one forward pass through those reductions.
- ``trajectory``: the same across the steps of a sampling run.
- ``patch``: the observer as a model patch (data on a cloned model handle) and the UNet call that honours it.
- ``views``: tensors -> pictures (colour maps, U-shaped grids, heat maps over an image), torch only.
- ``report``: the JSON-serialisable inspection report.
"""
