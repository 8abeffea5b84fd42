"""Video: probe, decode, upscale every frame through the engine (`tinysr.infer`), encode, keep audio and subtitles.

`upscale` (`upscale_video`, the clip as a whole), `probe` (stream facts, through PyAV), `pipes` (the FFmpeg
processes and the frame loop), `yuv` (Y-only nets on the decoded luma plane) and `_kernel` (its compiled HR stage).
Torch-free.
"""
