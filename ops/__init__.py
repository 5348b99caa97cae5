"""Operations: health and metrics endpoints, notices, the status board, commands from the phone."""
