-- The ecommerce sample used by the demo and the tests: customers 100, products 50, orders 200,
-- order_items 500. Deterministic (no random()).
CREATE SCHEMA ecommerce;
CREATE TABLE ecommerce.customers (
  id serial PRIMARY KEY,
  name text NOT NULL,
  email text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT '2026-01-01'
);
CREATE TABLE ecommerce.products (
  id serial PRIMARY KEY,
  name text NOT NULL,
  price_cents integer NOT NULL CHECK (price_cents > 0)
);
CREATE TABLE ecommerce.orders (
  id serial PRIMARY KEY,
  customer_id integer NOT NULL REFERENCES ecommerce.customers(id),
  ordered_at timestamptz NOT NULL
);
CREATE TABLE ecommerce.order_items (
  id serial PRIMARY KEY,
  order_id integer NOT NULL REFERENCES ecommerce.orders(id),
  product_id integer NOT NULL REFERENCES ecommerce.products(id),
  quantity integer NOT NULL CHECK (quantity > 0)
);
INSERT INTO ecommerce.customers (name, email)
  SELECT 'Customer ' || i, 'customer' || i || '@example.com' FROM generate_series(1, 100) i;
INSERT INTO ecommerce.products (name, price_cents)
  SELECT 'Product ' || i, 100 + i * 37 FROM generate_series(1, 50) i;
INSERT INTO ecommerce.orders (customer_id, ordered_at)
  SELECT 1 + (i * 7) % 100, timestamptz '2026-02-01' + i * interval '1 hour'
  FROM generate_series(1, 200) i;
INSERT INTO ecommerce.order_items (order_id, product_id, quantity)
  SELECT 1 + (i * 3) % 200, 1 + (i * 11) % 50, 1 + i % 4 FROM generate_series(1, 500) i;
