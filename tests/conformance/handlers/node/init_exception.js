'use strict';
// Loading this file throws: 443 InitError.
throw new Error('failed while loading');
