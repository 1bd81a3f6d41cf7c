"""What only training needs: never copied into a served model's folder on the Hub."""
