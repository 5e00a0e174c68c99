"""Chat coach: conversations and answers grounded in the recycling knowledge base."""
