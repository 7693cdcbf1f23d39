"""Feature extraction, training and evaluation of MER-CLIP on CMU-MOSI/MOSEI and video datasets."""
