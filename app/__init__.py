"""The Streamlit dashboard. Torch-free: it reads the store and runs the analysis only."""
