"""Reading signals with a vision-language model: ``schema`` (the answer), ``client`` (VLMClient),
``check`` (the anti-hallucination rules), ``local_server`` (a loopback OpenAI-compatible stand-in)."""
