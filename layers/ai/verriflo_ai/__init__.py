"""Verriflo's AI package: model providers, embeddings and retrieval, speech, images and metering.

Shared by the AI API (`functions/ai_agent`) and the AI tutor (`functions/ai_tutor`); heavy libraries
(onnxruntime, faster-whisper, rapidocr, matplotlib) are imported on first use only.
"""
